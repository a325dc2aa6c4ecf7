import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from '@japa/runner'
import { cronExpression, kekNameList } from '#validators/env_rules'

const ACE = fileURLToPath(new URL('../../ace.js', import.meta.url))

/** `node ace list` with extra env; exit code and stderr. */
function aceList(env: Record<string, string>) {
  const child = spawn(process.execPath, [ACE, 'list'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk) => (stderr += chunk))
  return new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stderr }))
  )
}

test.group('env rules / REWRAP_MANAGED_KEKS', () => {
  test('comma-separated names, trimmed and de-duplicated; unset or empty is []', ({ assert }) => {
    assert.deepEqual(kekNameList('K', ' orders, payments ,orders,, '), ['orders', 'payments'])
    assert.deepEqual(kekNameList('K', undefined), [])
    assert.deepEqual(kekNameList('K', ''), [])
  })

  test('a bad name is refused with the variable and the value: {$self}')
    .with(['orders,pay ments', 'orders,-x', 'a/b'])
    .run(({ assert }, value) => {
      assert.throws(
        () => kekNameList('REWRAP_MANAGED_KEKS', value),
        /REWRAP_MANAGED_KEKS.*not a KEK name/
      )
    })
})

test.group('env rules / REWRAP_SCHEDULE', () => {
  test('a cron expression passes; unset or blank is undefined', ({ assert }) => {
    assert.equal(cronExpression('S', '0 3 * * *'), '0 3 * * *')
    assert.equal(cronExpression('S', ' */5 * * * * '), '*/5 * * * *')
    assert.isUndefined(cronExpression('S', undefined))
    assert.isUndefined(cronExpression('S', '  '))
  })

  test('anything else is refused: {$self}')
    .with(['daily', '0 3 * *', '61 * * * *'])
    .run(({ assert }, value) => {
      assert.throws(() => cronExpression('REWRAP_SCHEDULE', value), /REWRAP_SCHEDULE.*not a cron/)
    })

  test('the app refuses to boot on a bad value, naming the variable', async ({ assert }) => {
    const bad = await aceList({ REWRAP_SCHEDULE: 'every day' })
    assert.notEqual(bad.code, 0)
    assert.include(bad.stderr, 'REWRAP_SCHEDULE')
    const good = await aceList({ REWRAP_SCHEDULE: '*/10 * * * *', REWRAP_MANAGED_KEKS: 'a,b' })
    assert.equal(good.code, 0, good.stderr)
  }).timeout(60_000)
})
