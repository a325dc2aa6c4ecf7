/*
|--------------------------------------------------------------------------
| .env for `npm start`
|--------------------------------------------------------------------------
|
| Reads .env (or .env.example on first run), generates the secrets it lacks
| and writes the file with mode 0600 whenever it writes a secret: chmod
| before the first byte, so a .env copied world-readable (0644) by hand is
| closed before it holds a key.
|
*/
import { closeSync, existsSync, fchmodSync, openSync, readFileSync, writeSync } from 'node:fs'

/** `KEY=value` lines of a dotenv text (quotes stripped). */
export function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line)
    if (match) out[match[1]] = match[2].replace(/^['"]|['"]$/g, '')
  }
  return out
}

/**
 * Writes `text` to `path` readable by its owner only (mode 0600, also when
 * the file existed with a wider mode).
 */
export function writePrivateFile(path: string, text: string) {
  const fd = openSync(path, 'w', 0o600)
  try {
    fchmodSync(fd, 0o600)
    writeSync(fd, text)
  } finally {
    closeSync(fd)
  }
}

/**
 * Ensures `envPath` holds a value for every key of `generate` (kept once
 * written); answers the file's values and the keys generated now.
 */
export function ensureEnvSecrets(
  envPath: string,
  examplePath: string,
  generate: Record<string, () => string>
): { values: Record<string, string>; generated: string[] } {
  let text = existsSync(envPath) ? readFileSync(envPath, 'utf8') : readFileSync(examplePath, 'utf8')
  const generated: string[] = []
  for (const [key, make] of Object.entries(generate)) {
    if (parseEnv(text)[key]) continue
    const pattern = new RegExp(`^${key}=.*$`, 'm')
    text = pattern.test(text)
      ? text.replace(pattern, `${key}=${make()}`)
      : `${text.trimEnd()}\n${key}=${make()}\n`
    generated.push(key)
  }
  if (generated.length > 0 || !existsSync(envPath)) writePrivateFile(envPath, text)
  return { values: parseEnv(text), generated }
}
