/*
|--------------------------------------------------------------------------
| PostgreSQL faults during a run
|--------------------------------------------------------------------------
|
| `rotate:kek` runs as a child on a second, embedded PostgreSQL that the
| test stops (fast shutdown), kills with SIGKILL and restarts mid-run,
| while an HTTP server (another child, same database) takes PUTs from
| writers that retry until acknowledged. The run rides through a short
| outage and completes; past `rotation.databaseOutageMs` it stops with
| one E_DATABASE_UNAVAILABLE line and `--resume` completes it. No write a
| writer saw acknowledged is lost, every row decrypts, nothing moved twice.
|
*/
import { readFileSync } from 'node:fs'
import { test } from '@japa/runner'
import pg from 'pg'
import { spawnAce } from '#tests/helpers/ace_child'
import { startAppServer, startWriters, tokenVia, type AppServer } from '#tests/helpers/app_server'
import { PgCluster } from '#tests/helpers/pg_cluster'
import { randomId } from '#tests/helpers/transit'
import { waitFor } from '#tests/helpers/wait'

const ROWS = 4000

/** One query on the cluster in a fresh connection (null while it is down). */
async function query(url: string, sql: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url })
  try {
    await client.connect()
    const result = await client.query(sql, params)
    return result.rows
  } finally {
    await client.end().catch(() => {})
  }
}

test.group('reliability: PostgreSQL restarted or killed mid-run', (group) => {
  // A second cluster needs a checkout its OS user can reach (see PgCluster.unavailable).
  const unavailable = PgCluster.unavailable()
  group.tap((t) => t.skip(unavailable !== null, unavailable ?? undefined))
  let cluster: PgCluster
  let env: Record<string, string>
  let server: AppServer
  let token: string

  group.setup(async () => {
    if (unavailable) return () => {}
    cluster = await PgCluster.start()
    env = { DATABASE_URL: cluster.url }
    server = await startAppServer(env)
    token = await tokenVia(env)
    return async () => {
      await server?.stop()
      await cluster?.destroy()
    }
  })

  /** Seeds a KEK on the cluster; answers its ids. */
  async function seedKek(kek: string) {
    const seed = spawnAce(['demo:seed', '--kek', kek, '--rows', String(ROWS), '--json'], env)
    if ((await seed.exited) !== 0) throw new Error(seed.output())
    const rows = await query(cluster.url, `SELECT id FROM vault_entries WHERE kek_name = $1`, [kek])
    return rows.map((r) => String(r.id))
  }

  const runRow = async (kek: string) => {
    const rows = await query(cluster.url, `SELECT * FROM key_rotations WHERE kek_name = $1`, [kek])
    return rows[0]
  }
  const committed = async (kek: string) => {
    const row = await runRow(kek)
    return Number(row?.rewrapped ?? 0)
  }

  /** Every row of the KEK at `version`, and the acknowledged writes read back over HTTP. */
  async function check(assert: any, kek: string, version: number, acked: Map<string, unknown>) {
    const counts = await query(
      cluster.url,
      `SELECT kek_version, count(*)::int AS n FROM vault_entries WHERE kek_name = $1 GROUP BY 1`,
      [kek]
    )
    assert.deepEqual(
      counts.map((r) => [r.kek_version, r.n]),
      [[version, ROWS]]
    )
    for (const [id, data] of acked) {
      const response = await fetch(`${server.base}/entries/${id}`, {
        headers: { authorization: `Bearer ${token}` },
      })
      assert.equal(response.status, 200, `entry ${id}`)
      assert.deepEqual(
        ((await response.json()) as any).data,
        data,
        `entry ${id}: acknowledged write kept`
      )
    }
  }

  for (const fault of ['fast shutdown', 'kill -9'] as const) {
    test(`${fault} of PostgreSQL mid-run: rotate:kek rides through and completes; no acknowledged write lost`, async ({
      assert,
    }) => {
      const kek = `dbfault-${randomId(4)}`
      const ids = await seedKek(kek)
      const writers = startWriters(server, token, ids.slice(0, 300))
      const rotation = spawnAce(
        [
          'rotate:kek',
          kek,
          '--batch-size',
          '100',
          '--sleep-ms',
          '50',
          '--nice-ratio',
          '0',
          '--json',
        ],
        env
      )
      await waitFor(async () => (await committed(kek)) >= 1000, {
        timeoutMs: 120_000,
        what: 'the run to commit 1000 rows',
      })
      if (fault === 'kill -9') await cluster.kill9()
      else await cluster.stop()
      // Down until the run noticed (its child keeps running, waiting).
      assert.isNull(rotation.child.exitCode, rotation.output().slice(-300))
      await cluster.restart()

      assert.equal(await rotation.exited, 0, rotation.output().slice(-800))
      await writers.stop()
      const run = await runRow(kek)
      assert.equal(run.status, 'completed')
      assert.equal(run.target_version, 2)
      // Rows a writer moved to v2 before the scan reached them are neither rewrapped nor
      // skipped; every other row was rewrapped (no batch lost or applied twice).
      const written = new Set(writers.acked.keys()).size
      assert.isAtMost(Number(run.rewrapped) + Number(run.skipped), ROWS)
      assert.isAtLeast(Number(run.rewrapped), ROWS - written)
      assert.equal(Number(run.failed), 0)
      assert.isAbove(writers.stats.acked, 0)
      // During the outage the server answered 503 E_DATABASE_UNAVAILABLE, never a 500.
      assert.isUndefined(writers.stats.statuses[500], JSON.stringify(writers.stats.statuses))
      assert.isAbove(writers.stats.statuses[503] ?? 0, 0, JSON.stringify(writers.stats.statuses))
      await check(assert, kek, 2, writers.acked)
      assert.notInclude(rotation.output(), '57P0', 'no raw database error')
    }).timeout(300_000)
  }

  test('fast shutdown of PostgreSQL mid-run: reencrypt rides through and completes; no acknowledged write lost', async ({
    assert,
  }) => {
    const from = `dbfrom-${randomId(4)}`
    const to = `dbto-${randomId(4)}`
    const ids = await seedKek(from)
    const created = spawnAce(['kek:create', to], env)
    assert.equal(await created.exited, 0, created.output())
    const writers = startWriters(server, token, ids.slice(0, 300))
    const moving = spawnAce(
      [
        'reencrypt',
        '--from',
        from,
        '--to',
        to,
        '--batch-size',
        '100',
        '--sleep-ms',
        '50',
        '--nice-ratio',
        '0',
        '--json',
      ],
      env
    )
    const moved = async () => {
      const rows = await query(
        cluster.url,
        `SELECT reencrypted FROM reencrypt_runs WHERE from_kek = $1`,
        [from]
      )
      return Number(rows[0]?.reencrypted ?? 0)
    }
    await waitFor(async () => (await moved()) >= 1000, {
      timeoutMs: 120_000,
      what: 'the run to move 1000 rows',
    })
    await cluster.stop()
    assert.isNull(moving.child.exitCode, moving.output().slice(-300))
    await cluster.restart()
    assert.equal(await moving.exited, 0, moving.output().slice(-800))
    await writers.stop()
    const counts = await query(
      cluster.url,
      `SELECT kek_name, count(*)::int AS n FROM vault_entries WHERE kek_name IN ($1, $2) GROUP BY 1`,
      [from, to]
    )
    assert.deepEqual(
      counts.map((r) => [r.kek_name, r.n]),
      [[to, ROWS]]
    )
    const [run] = await query(cluster.url, `SELECT * FROM reencrypt_runs WHERE from_kek = $1`, [
      from,
    ])
    assert.equal(run.status, 'completed')
    assert.equal(Number(run.failed), 0)
    for (const [id, data] of writers.acked) {
      const response = await fetch(`${server.base}/entries/${id}`, {
        headers: { authorization: `Bearer ${token}` },
      })
      assert.equal(response.status, 200, `entry ${id}`)
      const body = (await response.json()) as any
      assert.deepEqual(body.data, data, `entry ${id}: acknowledged write kept`)
    }
  }).timeout(300_000)

  test('an outage longer than rotation.databaseOutageMs: one E_DATABASE_UNAVAILABLE line, the run resumable; --resume completes it', async ({
    assert,
  }) => {
    const kek = `dbdown-${randomId(4)}`
    await seedKek(kek)
    const outageEnv = { ...env, REWRAP_DATABASE_OUTAGE_MS: '1500' }
    const rotation = spawnAce(
      ['rotate:kek', kek, '--batch-size', '100', '--sleep-ms', '50', '--nice-ratio', '0', '--json'],
      outageEnv
    )
    await waitFor(async () => (await committed(kek)) >= 500, {
      timeoutMs: 120_000,
      what: 'the run to commit 500 rows',
    })
    await cluster.stop()
    const code = await rotation.exited
    const lines = rotation.output().trim().split('\n')
    await cluster.restart()
    assert.equal(code, 1, rotation.output().slice(-500))
    assert.deepEqual(JSON.parse(lines[lines.length - 1]), {
      error:
        'E_DATABASE_UNAVAILABLE: The database is unavailable; the run is resumable once it is back (--resume)',
    })
    assert.notInclude(rotation.output(), '    at ', 'no stack trace')
    const logged = readFileSync(process.env.LOG_FILE!, 'utf8')
      .split('\n')
      .filter((line) => line.includes(`"pid":${rotation.child.pid},`))
    assert.isNotEmpty(logged)
    assert.isEmpty(
      logged.filter((line) => line.includes('\\n    at ')),
      'no stack trace in the log'
    )
    const stopped = await runRow(kek)
    assert.include(['running', 'failed'], stopped.status, 'resumable')
    assert.isBelow(Number(stopped.rewrapped), ROWS)

    const resumed = spawnAce(['rotate:kek', kek, '--resume', '--json'], env)
    assert.equal(await resumed.exited, 0, resumed.output().slice(-500))
    const run = await runRow(kek)
    assert.equal(run.id, stopped.id)
    assert.equal(run.status, 'completed')
    assert.equal(Number(run.rewrapped), ROWS, 'counted once across the outage')
    await check(assert, kek, 2, new Map())
  }).timeout(300_000)
})
