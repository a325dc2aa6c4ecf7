/*
|--------------------------------------------------------------------------
| Property-based hostile flags for the Ace commands (real `node ace` children)
|--------------------------------------------------------------------------
|
| Commands that act on a KEK, with a KEK that does not exist or is no
| valid name, and arbitrary flag values (wrong types, out of range, huge,
| unicode, unknown flags, flags without values). Invariant: exit code 1 and
| exactly one `E_CODE: message` line (or `{"error":"E_…"}` with --json), no
| stack trace, no other output. RELIABILITY_RUNS=100 for a larger run
| (each case is a process: about a second or two).
|
*/
import { test } from '@japa/runner'
import fc from 'fast-check'
import { spawnAce } from '#tests/helpers/ace_child'
import { envInt, reliabilitySeed } from '#tests/helpers/crash_checker'

const RUNS = Math.max(3, Math.floor(envInt('RELIABILITY_RUNS', 40) / 10))

const flagValues = fc.oneof(
  fc.constantFrom('abc', '-1', '0', '1e309', '0x10', '1.5', '', ' ', '٣', 'NaN', '9'.repeat(40)),
  fc.integer().map(String),
  fc.string({ maxLength: 12 }).map((s) => s.replace(/\0/g, ''))
)

const kekArgs = fc.oneof(
  fc.nat().map((n) => `nope-${n.toString(16)}`),
  fc.constantFrom('', ' ', '-x', 'a'.repeat(200), '../etc', 'vault:v1:AAAA', '𝕏', 'a b')
)

/** A command, its KEK argument and flags (valid names, arbitrary values, unknown flags). */
const invocations = fc
  .tuple(
    fc.constantFrom(
      {
        name: 'rotate:kek',
        flags: ['--batch-size', '--sleep-ms', '--max-rate', '--nice-ratio', '--target-version'],
      },
      { name: 'kek:retire', flags: [] as string[] },
      { name: 'kek:unretire', flags: ['--min-decryption-version'] },
      { name: 'kek:trim', flags: [] as string[] },
      { name: 'rotation:verify', flags: ['--sample', '--batch-size'] },
      { name: 'rotation:preflight', flags: [] as string[] }
    ),
    kekArgs,
    fc.array(fc.tuple(fc.nat(), flagValues), { maxLength: 3 }),
    fc.boolean(),
    fc.constantFrom(null, '--no-such-flag', '--batch-size')
  )
  .map(([command, kek, values, json, extra]) => {
    const argv = [command.name, kek]
    for (const [i, value] of values) {
      if (command.flags.length > 0) argv.push(`${command.flags[i % command.flags.length]}=${value}`)
    }
    if (extra) argv.push(extra)
    if (json) argv.push('--json')
    return argv
  })

test.group('reliability: hostile flags (property-based, real Ace processes)', () => {
  test('any flag values on a KEK that does not exist: exit 1 with exactly one E_ line', async () => {
    await fc.assert(
      fc.asyncProperty(invocations, async (argv) => {
        const ace = spawnAce(argv)
        const code = await ace.exited
        const lines = ace
          .output()
          .split('\n')
          .map((line) => line.trim())
          .filter(Boolean)
        const what = `node ace ${JSON.stringify(argv)} → exit ${code}: ${ace.output().slice(0, 400)}`
        if (code !== 1) throw new Error(what)
        if (lines.length !== 1) throw new Error(`not one line: ${what}`)
        const line = lines[0]
        // Ace's logger prefixes `[ error ]` when stdout is not a terminal.
        const plain = /^(\[ error \] )?E_[A-Z0-9_]+: \S/.test(line)
        const json = /^\{"error":"E_[A-Z0-9_]+: /.test(line)
        if (!plain && !json) throw new Error(`no E_ line: ${what}`)
      }),
      {
        seed: reliabilitySeed() + 4,
        numRuns: RUNS,
        endOnFailure: true,
        includeErrorInReport: true,
        // Always: Ace's own parse errors (a wrong type, an unknown flag, no argument).
        examples: [
          [['rotate:kek', 'nope-1', '--batch-size=abc']],
          [['rotate:kek', 'nope-2', '--no-such-flag']],
          [['kek:retire']],
        ],
      }
    )
  }).timeout(300_000)
})
