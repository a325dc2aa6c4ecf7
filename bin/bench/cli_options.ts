/*
|--------------------------------------------------------------------------
| Command-line option helpers (npm run bench, npm run load)
|--------------------------------------------------------------------------
|
| Both harnesses read their options with node:util parseArgs, every value
| as a string; these turn them into numbers and lists the same way and
| print the help.
|
*/

/** The `--help` / `-h` option, spread into a parseArgs `options`. */
export const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const

/** On `--help`: prints `text` and exits 0. */
export function exitWithHelpIfAsked(help: boolean | undefined, text: string): void {
  if (!help) return
  process.stdout.write(text + '\n')
  process.exit(0)
}

/**
 * The integer value of `--name` (`_` separators allowed); `fallback` when
 * it is not given. Throws unless it is an integer ≥ `min`.
 */
export function intOption(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number
): number {
  if (value === undefined) return fallback
  const parsed = Number(value.replace(/_/g, ''))
  if (!Number.isInteger(parsed) || parsed < min) {
    throw new Error(`--${name} must be an integer ≥ ${min}`)
  }
  return parsed
}

/**
 * The comma-separated integers of `--name`, each ≥ `min`; with
 * `skipEmpty`, empty items (`"1,,2"`, `""`) are left out, else each is read
 * as an integer like any other item (an empty one reads as 0).
 */
export function intListOption(
  name: string,
  value: string,
  min: number,
  { skipEmpty = false }: { skipEmpty?: boolean } = {}
): number[] {
  return value
    .split(',')
    .filter((v) => !skipEmpty || v.trim() !== '')
    .map((v) => intOption(name, v.trim(), 0, min))
}

/** The whitespace-separated words of a flags option (`--cli-args`, `--rotate-args`). */
export function wordsOption(value: string | undefined): string[] {
  return (value ?? '').split(/\s+/).filter(Boolean)
}
