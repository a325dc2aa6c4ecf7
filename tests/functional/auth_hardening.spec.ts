import { randomBytes } from 'node:crypto'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { KekService } from '#services/kek_service'
import limiter from '@adonisjs/limiter/services/main'
import { AuthThrottle, CLEAR_VERDICT_MS } from '#services/auth_throttle'
import { LAST_USED_RESOLUTION_MS } from '#services/token_service'
import { createToken } from '#tests/helpers/auth'
import { forgedToken, logLinesSince, logMark, send, tokenIdOf } from './support/http.js'

const kek = `fn-authh-${randomBytes(3).toString('hex')}`

/** Crafted tokens of issue 11: ids `abc`, `1.5`, 21 digits, SQL text. */
const CRAFTED = [
  'rwp_YWJj.c2VjcmV0',
  ...['abc', '1.5', '123456789012345678901', "' OR 1=1", '0', '01', '2147483648'].flatMap((id) => [
    `rwp_${Buffer.from(id).toString('base64url')}.c2VjcmV0`,
    forgedToken(id), // a well-formed secret part: only the id is wrong
  ]),
]

async function lastUsedAt(token: string): Promise<Date> {
  const row = await db.from('auth_access_tokens').where('id', tokenIdOf(token)).first()
  return row.last_used_at
}

test.group('auth hardening / token grammar and last_used_at', (group) => {
  let id: string
  let token: string
  group.setup(async () => {
    await app.container.make(KekService).then((keks) => keks.create(kek, { ifMissing: true }))
    token = await createToken(['entries:read', 'entries:write'])
    const created = await send('/entries', {
      method: 'POST',
      headers: { 'authorization': `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kek, data: 1 }),
    })
    id = JSON.parse(created.text).id
  })

  test('crafted tokens → 401 E_UNAUTHORIZED_ACCESS, never 500, no ERROR log', async ({
    assert,
  }) => {
    const mark = logMark()
    for (const crafted of CRAFTED) {
      for (const [method, path] of [
        ['GET', `/entries/${id}`],
        ['POST', '/rotations'],
        ['GET', '/metrics'],
      ]) {
        const response = await send(path, {
          method,
          headers: { authorization: `Bearer ${crafted}` },
        })
        assert.equal(response.status, 401, `${crafted} ${path}: ${response.text}`)
        assert.equal(response.code, 'E_UNAUTHORIZED_ACCESS')
      }
    }
    const errors = logLinesSince(mark).filter((line) => line.level >= 50)
    assert.deepEqual(errors, [], 'no ERROR log line for a crafted token')
  })

  test('a wrong secret for a real token id → 401 and last_used_at is not written', async ({
    assert,
  }) => {
    const fresh = await createToken(['entries:read'])
    assert.isNull(await lastUsedAt(fresh))
    const wrong = forgedToken(tokenIdOf(fresh))
    const response = await send(`/entries/${id}`, { headers: { authorization: `Bearer ${wrong}` } })
    assert.equal(response.status, 401, response.text)
    assert.isNull(await lastUsedAt(fresh), 'a failed check must not touch last_used_at')

    const ok = await send(`/entries/${id}`, { headers: { authorization: `Bearer ${fresh}` } })
    assert.equal(ok.status, 200, ok.text)
    const used = await lastUsedAt(fresh)
    assert.instanceOf(used, Date)
    assert.isAtMost(Math.abs(Date.now() - (used as Date).getTime()), 60_000)
  })

  test('last_used_at is kept to the minute: one write per minute of use, not one per request', async ({
    assert,
  }) => {
    const fresh = await createToken(['entries:read'])
    const get = async () => {
      const response = await send(`/entries/${id}`, {
        headers: { authorization: `Bearer ${fresh}` },
      })
      return response.status
    }
    assert.equal(await get(), 200)
    const first = await lastUsedAt(fresh)
    assert.instanceOf(first, Date)
    for (let i = 0; i < 5; i++) assert.equal(await get(), 200)
    const again = await lastUsedAt(fresh)
    assert.equal(
      again.getTime(),
      first.getTime(),
      'uses within the minute do not write the row again'
    )

    // A stamp older than the resolution is refreshed by the next use.
    const old = new Date(Date.now() - 2 * LAST_USED_RESOLUTION_MS)
    await db.from('auth_access_tokens').where('id', tokenIdOf(fresh)).update({ last_used_at: old })
    assert.equal(await get(), 200)
    const refreshed = await lastUsedAt(fresh)
    assert.isAbove(refreshed.getTime(), old.getTime() + LAST_USED_RESOLUTION_MS)
    assert.isAtMost(Math.abs(Date.now() - refreshed.getTime()), 60_000)
  })

  test('an expired token with the right secret → 401, last_used_at not written', async ({
    assert,
  }) => {
    const expiring = await createToken(['entries:read'], { expiresIn: '1h' })
    await db
      .from('auth_access_tokens')
      .where('id', tokenIdOf(expiring))
      .update({ expires_at: new Date(Date.now() - 1000) })
    const response = await send(`/entries/${id}`, {
      headers: { authorization: `Bearer ${expiring}` },
    })
    assert.equal(response.status, 401, response.text)
    assert.isNull(await lastUsedAt(expiring))
  })
})

test.group('auth hardening / failed-authentication throttle', (group) => {
  let id: string
  let good: string
  let other: string
  group.setup(async () => {
    await app.container.make(KekService).then((keks) => keks.create(kek, { ifMissing: true }))
    good = await createToken(['entries:read', 'entries:write'])
    other = await createToken(['entries:read'])
    const created = await send('/entries', {
      method: 'POST',
      headers: { 'authorization': `Bearer ${good}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kek, data: 2 }),
    })
    id = JSON.parse(created.text).id
  })
  group.each.teardown(() => app.container.restore(AuthThrottle))

  /** Small limits under a key prefix of this test only (no sleeping, no shared keys). */
  function limits(perIp: number, perToken: number, now?: () => number) {
    const keyPrefix = `test-${randomBytes(4).toString('hex')}`
    app.container.swap(
      AuthThrottle,
      () =>
        new AuthThrottle(
          {
            keyPrefix,
            perIp: { requests: perIp, duration: '10 minutes', blockDuration: '10 minutes' },
            perToken: { requests: perToken, duration: '10 minutes', blockDuration: '10 minutes' },
          },
          now
        )
    )
    return keyPrefix
  }

  /** Status of a GET of the entry from `ip` with `token`. */
  async function statusOf(ip: string, token?: string) {
    const response = await read(ip, token)
    return response.status
  }

  /** GET the entry from `ip` (X-Forwarded-For is trusted from loopback) with `token`. */
  function read(ip: string, token?: string) {
    const headers: Record<string, string> = { 'x-forwarded-for': ip }
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    return send(`/entries/${id}`, { headers })
  }

  test('a block recorded by another server process applies here within CLEAR_VERDICT_MS', async ({
    assert,
  }) => {
    let now = 0
    const keyPrefix = limits(3, 1000, () => now)
    const ip = '203.0.113.30'
    assert.equal(await statusOf(ip, good), 200)
    // Another process of the app (same limiter table) blocks this address.
    await limiter
      .use({ requests: 3, duration: '10 minutes', blockDuration: '10 minutes' })
      .block(`${keyPrefix}:ip:${ip}`, '10 minutes')
    assert.equal(await statusOf(ip, good), 200, 'this process may answer from its verdict...')
    now += CLEAR_VERDICT_MS
    assert.equal(await statusOf(ip, good), 429, '...for at most CLEAR_VERDICT_MS')
  })

  test('per address: after N failures → 429 with Retry-After, a good token included', async ({
    assert,
  }) => {
    limits(3, 1000)
    const ip = '203.0.113.10'
    for (const bad of ['rwp_YWJj.c2VjcmV0', forgedToken('999999'), 'not-a-token']) {
      assert.equal(await statusOf(ip, bad), 401)
    }
    const blocked = await read(ip, good)
    assert.equal(blocked.status, 429, blocked.text)
    assert.equal(blocked.code, 'E_TOO_MANY_REQUESTS')
    const retryAfter = Number(blocked.headers.get('retry-after'))
    assert.isTrue(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 600)
    // Another address is not affected.
    assert.equal(await statusOf('203.0.113.11', good), 200)
  })

  test('per token id: after N wrong secrets → 429 for that id from any address', async ({
    assert,
  }) => {
    limits(1000, 2)
    const wrong = forgedToken(tokenIdOf(good))
    assert.equal(await statusOf('198.51.100.1', wrong), 401)
    assert.equal(await statusOf('198.51.100.2', wrong), 401)
    const blocked = await read('198.51.100.3', good)
    assert.equal(blocked.status, 429, blocked.text)
    assert.equal(blocked.code, 'E_TOO_MANY_REQUESTS')
    assert.isAtLeast(Number(blocked.headers.get('retry-after')), 1)
    // Another token from the same address still works.
    assert.equal(await statusOf('198.51.100.3', other), 200)
  })

  test('requests without credentials and successes are not counted', async ({ assert }) => {
    limits(2, 2)
    const ip = '192.0.2.50'
    for (let i = 0; i < 5; i++) assert.equal(await statusOf(ip), 401)
    for (let i = 0; i < 5; i++) assert.equal(await statusOf(ip, good), 200)
  })
})
