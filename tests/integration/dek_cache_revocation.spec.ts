/*
|--------------------------------------------------------------------------
| DEK cache after revocation (kek:retire, kek:trim, dek-cache:flush)
|--------------------------------------------------------------------------
|
| A DEK cached by a process must stop decrypting as soon as its KEK
| version is retired or trimmed (or the KEK deleted) by ANOTHER process.
| Observed through a row restored from a backup to a retired version:
| only a cached DEK could still open it, the KMS refuses.
|
| The second process is a real app instance (bin/server.ts, its own HTTP
| port) on the test database; the revocations run here through the Ace
| kernel. Polls with a deadline; no sleeps.
|
*/
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { freePort } from '../../bin/embedded_postgres.js'
import { Clock } from '#services/clock'
import { DekCache } from '#services/dek_cache'
import { DekCacheListener } from '#services/dek_cache_invalidation'
import { EntryService } from '#services/entry_service'
import { KeyRotationService } from '#services/key_rotation_service'
import { createToken, entriesToken } from '#tests/helpers/auth'
import { createKek, kekName, kmsDriver } from '#tests/helpers/rotation'
import { waitFor } from '#tests/helpers/wait'
import { runAce } from '#tests/helpers/ace'
import { ShiftedClock } from '#tests/helpers/clock'

const DAY = 24 * 3_600_000
const SERVER = fileURLToPath(new URL('../../bin/server.ts', import.meta.url))

async function ace(name: string, argv: string[]) {
  const run = await runAce(name, argv)
  return run.exitCode
}

/** A second app instance (HTTP server) on the test database. */
async function startServer(): Promise<{ base: string; child: ChildProcess; output(): string }> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import=@poppinss/ts-exec', SERVER], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const base = `http://127.0.0.1:${port}`
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`server exited: ${output}`)
      return fetch(`${base}/health/live`).then(
        (r) => r.ok,
        () => false
      )
    },
    { timeoutMs: 60_000 }
  )
  return { base, child, output: () => output }
}

/** A row as a backup would hold it. */
async function snapshot(id: string) {
  return db.from('vault_entries').where('id', id).first()
}

async function restore(row: Record<string, any>) {
  await db.from('vault_entries').where('id', row.id).update({
    kek_version: row.kek_version,
    wrapped_dek: row.wrapped_dek,
    ciphertext: row.ciphertext,
  })
}

test.group('DEK cache revocation across processes', (group) => {
  const clock = new ShiftedClock()
  let server: Awaited<ReturnType<typeof startServer>>
  let token: string

  group.setup(async () => {
    server = await startServer()
    return async () => {
      server.child.kill('SIGTERM')
      await new Promise((resolve) => server.child.once('exit', resolve))
    }
  })
  group.each.setup(async () => {
    token = await entriesToken()
    clock.offsetMs = 0
    app.container.swap(Clock, () => clock)
    return () => app.container.restore(Clock)
  })

  const get = (id: string) =>
    fetch(`${server.base}/entries/${id}`, { headers: { authorization: `Bearer ${token}` } })
  const status = async (id: string) => {
    const response = await get(id)
    await response.arrayBuffer()
    return response.status
  }

  /** Entry created and read through the second process (its DEK cached there). */
  async function cachedEntry(kek: string, data: unknown) {
    const created = await fetch(`${server.base}/entries`, {
      method: 'POST',
      headers: { 'authorization': `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kek, data }),
    })
    const { id } = (await created.json()) as { id: string }
    const read = await get(id)
    if (read.status !== 200) throw new Error(`GET ${read.status}`)
    return { id, backup: await snapshot(id) }
  }

  test('kek:retire in another process: the cached DEK of a retired version stops decrypting', async ({
    assert,
  }) => {
    const kek = kekName('rev')
    await createKek(kek)
    const { id, backup } = await cachedEntry(kek, { secret: 'retire-me' })
    const rotations = await app.container.make(KeyRotationService)
    await rotations.rotate(kek)
    // Control: a restored v1 row still opens from the cache while v1 is not retired.
    await restore(backup)
    assert.equal(await status(id), 200)

    clock.offsetMs = 2 * DAY
    assert.equal(await ace('kek:retire', [kek]), 1, 'refused: the restored row is below v2')
    await rotations.rotate(kek, { rotate: false })
    assert.equal(await ace('kek:retire', [kek]), 0)
    await restore(backup)

    const refused = await waitFor(
      async () => {
        const response = await get(id)
        return response.status !== 200 ? response : null
      },
      { timeoutMs: 10_000 }
    )
    assert.notInclude(await refused!.text(), 'retire-me')
    const driver = await kmsDriver(kek)
    const direct = await driver.unwrap(kek, [backup.wrapped_dek]).catch((e) => e)
    assert.equal(direct.code, 'E_KEY_VERSION_DISALLOWED')
  }).timeout(120_000)

  test('kek:trim in another process after a retirement made in the KMS directly', async ({
    assert,
  }) => {
    const kek = kekName('trm')
    await createKek(kek)
    const { id, backup } = await cachedEntry(kek, { secret: 'trim-me' })
    const rotations = await app.container.make(KeyRotationService)
    await rotations.rotate(kek)
    // Retired outside the app (no notice): the restored row still opens from the cache.
    const driver = await kmsDriver(kek)
    await driver.configureKey(kek, { minDecryptionVersion: 2 })
    await restore(backup)
    assert.equal(await status(id), 200)

    clock.offsetMs = 40 * DAY
    const rows = await db.from('vault_entries').where('id', id).update({ kek_version: 2 })
    assert.equal(Number(rows), 1) // trim refuses while a row is below v2: hide it for the trim
    assert.equal(await ace('kek:trim', [kek]), 0)
    await restore(backup)

    const refused = await waitFor(
      async () => {
        const response = await get(id)
        return response.status !== 200 ? response : null
      },
      { timeoutMs: 10_000 }
    )
    assert.notInclude(await refused!.text(), 'trim-me')
  }).timeout(120_000)

  test('dek-cache:flush empties the cache of the other process', async ({ assert }) => {
    const kek = kekName('fl')
    await createKek(kek)
    const { id } = await cachedEntry(kek, 1)
    const before = await metricsHits()
    assert.equal(await status(id), 200)
    assert.equal((await metricsHits()) - before, 1, 'served from the cache')
    assert.equal(await ace('dek-cache:flush', [kek]), 0)
    await waitFor(
      async () => {
        const hits = await metricsHits()
        const response = await get(id)
        return response.status === 200 && (await metricsHits()) === hits
      },
      { timeoutMs: 10_000 }
    )
  }).timeout(120_000)

  async function metricsHits(): Promise<number> {
    const response = await fetch(`${server.base}/metrics`, {
      headers: { authorization: `Bearer ${await metricsToken()}` },
    })
    const text = await response.text()
    const line = text.split('\n').find((l) => l.startsWith('rewrap_dek_cache_hits_total'))
    return Number(line?.split(' ').pop() ?? Number.NaN)
  }
})

let metrics: string | undefined
async function metricsToken() {
  metrics ??= await createToken(['rotation:read'])
  return metrics
}

test.group('DEK cache revocation in this process', (group) => {
  const clock = new ShiftedClock()
  group.each.setup(() => {
    clock.offsetMs = 0
    app.container.swap(Clock, () => clock)
    return () => app.container.restore(Clock)
  })

  test('kek:retire here: the cached DEK of the retired version stops decrypting at once', async ({
    assert,
  }) => {
    const kek = kekName('loc')
    await createKek(kek)
    const entries = await app.container.make(EntryService)
    const { id } = await entries.create(kek, { secret: 'local' })
    await entries.find(id)
    const backup = await snapshot(id)
    const rotations = await app.container.make(KeyRotationService)
    await rotations.rotate(kek)
    clock.offsetMs = 2 * DAY
    assert.equal(await ace('kek:retire', [kek]), 0)
    await restore(backup)
    const error = await entries.find(id).catch((e) => e)
    assert.equal(error.code, 'E_KEY_VERSION_DISALLOWED')
  })

  test('a lost listener connection suspends the cache until it listens again', async ({
    assert,
  }) => {
    const listener = await app.container.make(DekCacheListener)
    const cache = await app.container.make(DekCache)
    await waitFor(async () => listener.listening, { timeoutMs: 10_000 })
    assert.isFalse(cache.suspended)
    const connects = listener.connects
    const { rows } = await db.rawQuery(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE application_name = 'rewrap-bg-dek-cache' AND pid = ?`,
      [listener.backendPid!]
    )
    assert.deepEqual(rows, [{ ok: true }])
    await waitFor(async () => listener.connects > connects, { timeoutMs: 10_000 })
    await waitFor(async () => listener.listening && !cache.suspended, { timeoutMs: 10_000 })
  })
})
