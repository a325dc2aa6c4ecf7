/*
|--------------------------------------------------------------------------
| What a person at a terminal sees while a long command runs
|--------------------------------------------------------------------------
|
| rotate:kek, reencrypt and demo:seed run on a real pseudo-terminal. While
| the progress bar is drawn, log records are written above it (warnings and
| errors only; every record is in the log file) and never into a bar line;
| the summary after the bar says each fact once. They run as an operator
| runs them, without LOG_FILE: the full log goes to tmp/logs/ace.log.
|
*/
import { readFileSync } from 'node:fs'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { createKek, kekName, seed } from '#tests/helpers/rotation'
import { runOnTerminal, terminalUnavailable, type TerminalRun } from '#tests/helpers/terminal'

const unavailable = terminalUnavailable()

/** A frame of a progress bar line drawn for `label`. */
function barPattern(label: string) {
  return new RegExp(
    `^${label} \\[[█░]+\\] \\d+% \\| \\d+/\\d+ rows \\| \\d+ rows/s( \\| ETA (\\d+[smhd]|NULL|NaN|N/A|∞|\\S+))?$`
  )
}

/** Lines on which a bar of `label` was drawn. */
function barLines(run: TerminalRun, label: string) {
  return run.lines.filter((frames) => frames.some((f) => f.startsWith(`${label} [`)))
}

/**
 * The text lines (no bar frame): what each line finally shows. The suite runs
 * with DUAL_CONTROL=off, so each governed act's "dual control is off" warning
 * (a warning: shown on the terminal, before the bar) is set aside here.
 */
function textLines(run: TerminalRun, label: string) {
  return run.lines
    .filter((frames) => frames.length > 0 && !frames.some((f) => f.startsWith(`${label} [`)))
    .map((frames) => frames.join(''))
    .filter((line) => !/WARN +dual control is off: /.test(line))
}

/** Asserts that every frame of every bar line is a bar and nothing else. */
function assertBarsClean(assert: any, run: TerminalRun, label: string) {
  const bars = barLines(run, label)
  assert.isAbove(bars.length, 0, `a ${label} bar was drawn:\n${run.lines.join('\n')}`)
  for (const frames of bars) {
    for (const frame of frames) assert.match(frame, barPattern(label), 'nothing else on a bar line')
  }
}

/** As an operator runs it: no LOG_FILE. */
const OPERATOR = { env: { LOG_FILE: undefined } }

/** Records of the commands' default log file (every record, whatever the terminal showed). */
function logRecords(filter: (record: any) => boolean) {
  return readFileSync(app.tmpPath('logs', 'ace.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .filter(filter)
}

test.group('terminal: progress bars and log lines', (group) => {
  group.tap((t) => t.skip(unavailable !== null, unavailable ?? undefined))

  test('rotate:kek draws its bar alone on its line and says each fact of the summary once', async ({
    assert,
  }) => {
    const kek = kekName('tty')
    await createKek(kek)
    await seed(kek, 400)

    const run = await runOnTerminal(['rotate:kek', kek, '--batch-size', '40'], OPERATOR)
    assert.equal(run.exitCode, 0, run.raw)
    assertBarsClean(assert, run, 'rotation')
    const lines = textLines(run, 'rotation')
    const [row] = await db.from('key_rotations').where('kek_name', kek).select('id')
    const summary = `[ success ] Run #${row.id}: every row of "${kek}" is at v2; rewrapped 400, skipped 0 (changed by writes meanwhile), failed 0`
    assert.deepEqual(lines, [summary], 'the summary is the only text line')

    // The info records the terminal did not show are all in the log file.
    const records = logRecords((r) => r.kek === kek && String(r.run) === String(row.id))
    assert.includeMembers(
      records.map((r) => r.msg),
      ['KEK rotated; new writes use the new version', 'rotation rows started', 'rotation completed']
    )
  })

  test('reencrypt writes a warning above its bar and keeps drawing the bar below it', async ({
    assert,
  }) => {
    const from = kekName('ttyold')
    const to = kekName('ttynew')
    await createKek(from)
    await createKek(to)
    const seeded = await seed(from, 300)
    const ids = [...seeded.keys()]
    // The second row's payload does not authenticate: the first batch warns, more batches follow.
    await db.rawQuery(
      `UPDATE vault_entries SET ciphertext = set_byte(ciphertext, 20, get_byte(ciphertext, 20) # 1) WHERE id = ?`,
      [ids[1]]
    )

    const run = await runOnTerminal(
      ['reencrypt', '--from', from, '--to', to, '--batch-size', '30'],
      OPERATOR
    )
    assert.equal(run.exitCode, 1, run.raw)
    assertBarsClean(assert, run, 'reencrypt')

    const warning = run.lines.findIndex((frames) =>
      frames.some((f) => f.includes('WARN') && f.includes('re-encrypt: rows could not be read'))
    )
    assert.isAbove(warning, -1, `the warning reached the terminal:\n${run.raw}`)
    assert.lengthOf(run.lines[warning], 1, 'the warning has its line to itself')
    assert.isTrue(
      run.lines
        .slice(warning + 1)
        .some((frames) => frames.some((f) => f.startsWith('reencrypt ['))),
      'the bar is drawn again below the warning'
    )

    const lines = textLines(run, 'reencrypt')
    assert.lengthOf(
      lines.filter((l) => l.includes('re-encrypted 299')),
      1,
      'the counts are said once'
    )
    assert.lengthOf(
      lines.filter((l) => l.includes(`entry ${ids[1]}: E_CIPHERTEXT_INVALID`)),
      1,
      'the failed row is named once'
    )
    assert.notInclude(lines.join('\n'), 'INFO', 'no info record on the terminal')
    assert.includeMembers(
      logRecords((r) => r.from === from).map((r) => r.msg),
      ['re-encrypt started', 're-encrypt: rows could not be read; left in place']
    )
  })

  test('demo:seed says that it created the KEK and what it seeded once each', async ({
    assert,
  }) => {
    const kek = kekName('ttyseed')
    const run = await runOnTerminal(
      ['demo:seed', '--kek', kek, '--rows', '300', '--batch', '30'],
      OPERATOR
    )
    assert.equal(run.exitCode, 0, run.raw)
    assertBarsClean(assert, run, 'seeding')
    const lines = textLines(run, 'seeding')
    assert.lengthOf(lines, 2, lines.join('\n'))
    assert.equal(lines[0], `[ info ] Created KEK "${kek}"`)
    assert.match(lines[1], new RegExp(`^\\[ success \\] Seeded 300 rows into KEK "${kek}" in `))
    assert.includeMembers(
      logRecords((r) => r.kekName === kek).map((r) => r.msg),
      ['KEK created', 'entries seeded']
    )
  })
})
