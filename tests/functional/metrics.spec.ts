import { test } from '@japa/runner'
import type { ApiClient } from '@japa/api-client'
import app from '@adonisjs/core/services/app'
import { KmsManager } from '#kms/kms_manager'
import { DekCache } from '#services/dek_cache'
import { EntryService } from '#services/entry_service'
import { createToken } from '#tests/helpers/auth'
import {
  createKek,
  kekName,
  kmsDriver,
  rotateInKms,
  seed,
  versionCounts,
} from '#tests/helpers/rotation'
import { freePort, vaultDriverFor } from '#tests/helpers/transit'
import { waitFor } from '#tests/helpers/wait'
import { clearCounts } from '#tests/helpers/counts'
import { rejectsWith } from '#tests/helpers/errors'

/** One sample of the exposition: `name{labels} value`. */
interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** A parsed exposition: samples, and HELP / TYPE per metric family. */
interface Exposition {
  samples: Sample[]
  help: Map<string, string>
  type: Map<string, string>
}

const SAMPLE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (-?(?:[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|\+Inf|-Inf|NaN))$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/g

/**
 * Strict parser of the Prometheus text format (0.0.4): every line is a
 * `# HELP`, a `# TYPE` or a sample; anything else throws.
 */
function parseExposition(text: string): Exposition {
  const out: Exposition = { samples: [], help: new Map(), type: new Map() }
  for (const line of text.split('\n')) {
    if (line === '') continue
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line)
    if (help) {
      out.help.set(help[1], help[2])
      continue
    }
    const type =
      /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (type) {
      out.type.set(type[1], type[2])
      continue
    }
    const sample = SAMPLE.exec(line)
    if (!sample) throw new Error(`not a valid exposition line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, key, value] of (sample[2] ?? '').matchAll(LABEL)) labels[key] = value
    out.samples.push({ name: sample[1], labels, value: Number(sample[3]) })
  }
  return out
}

/** The family a sample belongs to (histogram `_bucket/_sum/_count` → base name). */
function family(exposition: Exposition, name: string): string {
  if (exposition.type.has(name)) return name
  const base = name.replace(/_(bucket|sum|count)$/, '')
  return exposition.type.get(base) === 'histogram' ? base : name
}

function find(exposition: Exposition, name: string, labels: Record<string, string> = {}) {
  return exposition.samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  )
}

async function scrape(client: ApiClient, token: string): Promise<Exposition> {
  const response = await client.get('/metrics').bearerToken(token)
  response.assertStatus(200)
  const contentType = String(response.header('content-type'))
  if (!contentType.startsWith('text/plain')) throw new Error(`content-type ${contentType}`)
  return parseExposition(response.text())
}

test.group('GET /metrics', (group) => {
  let token: string
  group.setup(async () => {
    token = await createToken(['rotation:read'])
  })

  test('401 without a token, 403 without rotation:read', async ({ client, assert }) => {
    const anonymous = await client.get('/metrics')
    assert.equal(anonymous.status(), 401)
    const other = await createToken(['entries:read', 'rotation:admin'])
    const forbidden = await client.get('/metrics').bearerToken(other)
    assert.equal(forbidden.status(), 403)
    assert.equal(forbidden.body().errors[0].code, 'E_FORBIDDEN')
  })

  test('parses as Prometheus exposition (HELP and TYPE per family); row counts equal the table', async ({
    client,
    assert,
  }) => {
    const kek = kekName('fn-metrics')
    await createKek(kek)
    await seed(kek, 40)
    await rotateInKms(kek)
    await seed(kek, 15, 40)
    await clearCounts()

    const exposition = await scrape(client, token)
    for (const sample of exposition.samples) {
      const name = family(exposition, sample.name)
      assert.isTrue(exposition.help.has(name), `HELP for ${name}`)
      assert.isTrue(exposition.type.has(name), `TYPE for ${name}`)
    }
    const table = await versionCounts(kek)
    const entries = find(exposition, 'rewrap_entries', { kek })
    assert.deepEqual(
      Object.fromEntries(entries.map((s) => [Number(s.labels.version), s.value])),
      table
    )
    assert.deepEqual(table, { 1: 40, 2: 15 })
    assert.equal(find(exposition, 'rewrap_entries_stale', { kek })[0].value, 40)
    assert.equal(find(exposition, 'rewrap_kek_latest_version', { kek })[0].value, 2)
    const age = find(exposition, 'rewrap_kek_key_age_seconds', { kek })[0].value
    assert.isAtLeast(age, 0)
    assert.isBelow(age, 600)
    const due = find(exposition, 'rewrap_kek_rotation_due_timestamp_seconds', { kek })[0].value
    assert.isAbove(due, Date.now() / 1000 + 80 * 86_400)
    assert.equal(find(exposition, 'rewrap_rotation_running', { kek })[0].value, 0)
    assert.lengthOf(find(exposition, 'rewrap_rotation_last_success_timestamp_seconds', { kek }), 0)

    // Every KEK's counts match the table, not only this one's.
    const { default: db } = await import('@adonisjs/lucid/services/db')
    const rows = await db
      .from('vault_entries')
      .groupBy('kek_name', 'kek_version')
      .select('kek_name', 'kek_version')
      .count('* as n')
    await clearCounts()
    const again = await scrape(client, token)
    for (const row of rows) {
      const sample = find(again, 'rewrap_entries', {
        kek: row.kek_name,
        version: String(row.kek_version),
      })
      assert.lengthOf(sample, 1, `${row.kek_name} v${row.kek_version}`)
      assert.equal(sample[0].value, Number(row.n), `${row.kek_name} v${row.kek_version}`)
    }
  })

  test('a completed rotation sets the last success time; KMS latency and errors are counted', async ({
    client,
    assert,
  }) => {
    const kek = kekName('fn-metrics-run')
    await createKek(kek)
    await seed(kek, 30)
    const before = await scrape(client, token)
    const rewrapCount = (e: typeof before) =>
      find(e, 'rewrap_kms_request_duration_seconds_count', { op: 'rewrap' }).reduce(
        (sum, s) => sum + s.value,
        0
      )
    const errorCount = (e: typeof before) =>
      find(e, 'rewrap_kms_errors_total', { op: 'unwrap', code: 'E_CIPHERTEXT_INVALID' }).reduce(
        (sum, s) => sum + s.value,
        0
      )

    const admin = await createToken(['rotation:admin'])
    const started = await client.post('/rotations').bearerToken(admin).json({ kek })
    started.assertStatus(202)
    await waitFor(
      async () => {
        const run = await client.get(`/rotations/${started.body().id}`).bearerToken(token)
        return run.body().status === 'completed'
      },
      { what: 'the rotation to complete' }
    )
    const driver = await kmsDriver(kek)
    await rejectsWith(
      driver.unwrap(kek, ['vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']),
      'E_CIPHERTEXT_INVALID'
    )

    await clearCounts()
    const after = await scrape(client, token)
    const lastSuccess = find(after, 'rewrap_rotation_last_success_timestamp_seconds', { kek })
    assert.lengthOf(lastSuccess, 1)
    assert.closeTo(lastSuccess[0].value, Date.now() / 1000, 60)
    assert.isAbove(rewrapCount(after), rewrapCount(before))
    assert.equal(errorCount(after), errorCount(before) + 1)
    assert.equal(after.type.get('rewrap_kms_request_duration_seconds'), 'histogram')
    const buckets = find(after, 'rewrap_kms_request_duration_seconds_bucket', {
      driver: 'local',
      op: 'rewrap',
      outcome: 'ok',
    })
    assert.isAbove(buckets.length, 1)
    assert.equal(buckets[buckets.length - 1].labels.le, '+Inf')
    assert.deepEqual(
      find(after, 'rewrap_entries', { kek }).map((s) => [s.labels.version, s.value]),
      [
        ['1', 0],
        ['2', 30],
      ]
    )
  })

  test('DEK cache hit ratio follows DekCache.stats()', async ({ client, assert }) => {
    const kek = kekName('fn-metrics-cache')
    await createKek(kek)
    const entries = await app.container.make(EntryService)
    const created = await entries.create(kek, { n: 1 })
    await entries.find(created.id)
    await entries.find(created.id)
    const cache = await app.container.make(DekCache)
    const stats = cache.stats()
    const exposition = await scrape(client, token)
    const hits = find(exposition, 'rewrap_dek_cache_hits_total')[0].value
    const misses = find(exposition, 'rewrap_dek_cache_misses_total')[0].value
    assert.equal(hits, stats.hits)
    assert.equal(misses, stats.misses)
    assert.isAbove(hits, 0)
    assert.closeTo(
      find(exposition, 'rewrap_dek_cache_hit_ratio')[0].value,
      stats.hits / (stats.hits + stats.misses),
      1e-9
    )
    assert.equal(find(exposition, 'rewrap_dek_cache_entries')[0].value, stats.size)
  })

  test('KMS down: still scraped; counts from the table, rewrap_kek_kms_reachable 0', async ({
    client,
    assert,
  }) => {
    const kek = kekName('fn-metrics-down')
    await createKek(kek)
    await seed(kek, 9)
    await clearCounts()
    const { driver } = vaultDriverFor(
      { url: `http://127.0.0.1:${await freePort()}`, token: 'test-not-a-real-token' },
      { timeoutMs: 1_000, retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } }
    )
    app.container.swap(
      KmsManager,
      () => new KmsManager({ default: 'vault', drivers: { vault: () => driver } })
    )
    try {
      const exposition = await scrape(client, token)
      assert.equal(find(exposition, 'rewrap_entries', { kek, version: '1' })[0].value, 9)
      assert.equal(find(exposition, 'rewrap_kek_kms_reachable', { kek })[0].value, 0)
      assert.lengthOf(find(exposition, 'rewrap_kek_key_age_seconds', { kek }), 0)
      const errors = find(exposition, 'rewrap_kms_errors_total', {
        driver: 'vault',
        op: 'readKey',
        code: 'E_KMS_UNAVAILABLE',
      })
      assert.isAbove(errors[0]?.value ?? 0, 0)
    } finally {
      app.container.restore(KmsManager)
    }
  })

  test('the exposition never carries a token or key material', async ({ client, assert }) => {
    const response = await client.get('/metrics').bearerToken(token)
    assert.notInclude(response.text(), token)
    assert.notMatch(response.text(), /vault:v[0-9]+:/)
  })
})
