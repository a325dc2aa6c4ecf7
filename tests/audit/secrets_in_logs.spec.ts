import { existsSync, readFileSync } from 'node:fs'
import { test } from '@japa/runner'
import { runAce } from '#tests/helpers/ace'
import { rememberedSecrets, rememberToken } from '#tests/helpers/secrets'

/*
|--------------------------------------------------------------------------
| Audit: no secret in any log line of the run
|--------------------------------------------------------------------------
|
| Runs last (adonisrc.ts lists the suite last). Every secret the other
| suites remembered (bearer tokens, plaintext markers, unwrapped DEKs) is
| searched for in the run's log file, which the app writes synchronously
| (LOG_FILE, set by bin/test.ts), so every line logged so far is there.
|
*/
test.group('audit / secrets in logs', () => {
  test('the app logged to LOG_FILE during this run', async ({ assert }) => {
    // A probe of its own, so the audit means something when run alone too:
    // token:create logs the creation (and must not log the token).
    const out = await runAce('token:create', [
      '--name',
      'audit-probe',
      '--abilities',
      'entries:read',
      '--json',
    ])
    assert.equal(out.exitCode, 0)
    rememberToken(out.json.token)

    const file = process.env.LOG_FILE
    assert.isString(file, 'LOG_FILE is set by bin/test.ts')
    assert.isTrue(existsSync(file!), `${file} exists`)
    const text = readFileSync(file!, 'utf8')
    assert.isAbove(text.trim().length, 0, 'the log file is not empty')
    assert.include(text, 'access token created')
  })

  test('no remembered secret appears in the log file', ({ assert }) => {
    const text = readFileSync(process.env.LOG_FILE!, 'utf8')
    const secrets = rememberedSecrets()
    assert.isAbove(secrets.length, 0, 'tests remembered secrets')

    const leaked = secrets.filter(({ value }) => text.includes(value))
    assert.deepEqual(
      leaked.map(({ label, value }) => `${label}: ${value.slice(0, 6)}…`),
      [],
      `secrets found in ${process.env.LOG_FILE}`
    )
  })

  test('every log line is JSON (nothing bypassed the logger)', ({ assert }) => {
    const lines = readFileSync(process.env.LOG_FILE!, 'utf8').split('\n').filter(Boolean)
    const bad = lines.filter((line) => {
      try {
        JSON.parse(line)
        return false
      } catch {
        return true
      }
    })
    assert.deepEqual(bad.slice(0, 3), [])
  })
})
