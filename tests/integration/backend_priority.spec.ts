import { test } from '@japa/runner'
import { runScript } from '#tests/helpers/child_script'

/*
| In a child process (the module keeps the process's background priority),
| against the test database's real server: three connections, two of them
| registered as the pool's afterCreate does, one before and one after the
| process enters background priority, one never registered.
*/
const SCRIPT = `
import { readFileSync, statSync } from 'node:fs'
import pg from 'pg'
import { registerBackend, lowerBackendPriority } from '#services/backend_priority'
import { enterBackgroundPriority } from '#services/cpu_priority'
const nice = (pid) => {
  const stat = readFileSync('/proc/' + pid + '/stat', 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
}
const connect = async () => {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL })
  await client.connect()
  const { rows } = await client.query('select pg_backend_pid() as pid')
  return { client, pid: rows[0].pid }
}
const early = await connect()
await registerBackend(early.client)
const other = await connect()
const crossed = lowerBackendPriority(other.pid, early.client, 15)
const entered = enterBackgroundPriority({ cpuNice: 12, niceLocalBackends: true })
const late = await connect()
await registerBackend(late.client)
const group = (pid) => {
  try {
    return Number(/nice (-?\\d+)/.exec(readFileSync('/proc/' + pid + '/autogroup', 'utf8'))[1])
  } catch {
    return null
  }
}
let autogroups = null
try {
  autogroups = readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1'
} catch {}
const out = {
  autogroups,
  groups: { early: group(early.pid), late: group(late.pid), other: group(other.pid) },
  crossed,
  entered,
  early: nice(early.pid),
  late: nice(late.pid),
  other: nice(other.pid),
  uid: process.getuid(),
  backendUid: statSync('/proc/' + early.pid).uid,
}
for (const c of [early, other, late]) await c.client.end()
console.log(JSON.stringify(out))
`

test.group('backend priority (real Postgres on this host)', () => {
  test('a background process lowers its own backends, only those, before and after entering', async ({
    assert,
  }) => {
    const out = await runScript(SCRIPT)
    assert.equal(out.entered, 12)
    assert.equal(out.crossed, 'not-local', "another connection's backend is never touched")
    assert.equal(out.other, 0, 'a connection that is not registered keeps its priority')
    if (out.uid !== 0 && out.uid !== out.backendUid) {
      // Another user's server without CAP_SYS_NICE: refused, nothing changed.
      assert.deepEqual([out.early, out.late], [0, 0])
      return
    }
    assert.equal(out.early, 12, 'registered before: lowered on entering')
    assert.equal(out.late, 12, 'registered after: lowered at once')
    if (out.autogroups) {
      // Each backend leads its own session: its autogroup is lowered with it, no other.
      assert.deepEqual(out.groups, { early: 12, late: 12, other: 0 }, JSON.stringify(out))
    }
  })
    .skip(
      process.platform !== 'linux',
      'backend priorities are read and set through /proc (Linux only)'
    )
    .timeout(30_000)
})
