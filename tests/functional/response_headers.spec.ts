import { randomBytes } from 'node:crypto'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import { KekService } from '#services/kek_service'
import { createToken } from '#tests/helpers/auth'
import { logLinesSince, logMark, send } from './support/http.js'

const kek = `fn-hdrs-${randomBytes(3).toString('hex')}`
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

function assertSecurityHeaders(assert: any, headers: Headers, what: string) {
  assert.equal(headers.get('cache-control'), 'no-store', what)
  assert.equal(headers.get('x-content-type-options'), 'nosniff', what)
  assert.equal(headers.get('x-frame-options'), 'DENY', what)
  assert.include(headers.get('content-security-policy') ?? '', "frame-ancestors 'none'", what)
  assert.include(headers.get('content-security-policy') ?? '', "default-src 'none'", what)
  assert.equal(headers.get('referrer-policy'), 'no-referrer', what)
}

test.group('response headers', (group) => {
  let token: string
  let id: string
  group.setup(async () => {
    await app.container.make(KekService).then((keks) => keks.create(kek, { ifMissing: true }))
    token = await createToken(['entries:read', 'entries:write'])
    const created = await send('/entries', {
      method: 'POST',
      headers: { 'authorization': `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kek, data: 'plaintext in a response' }),
    })
    id = JSON.parse(created.text).id
  })

  test('plaintext responses and errors: no-store and security headers', async ({ assert }) => {
    const read = await send(`/entries/${id}`, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(read.status, 200)
    assertSecurityHeaders(assert, read.headers, 'GET /entries/:id')
    for (const [path, status] of [
      [`/entries/${id}`, 401],
      ['/entries/99999999999999', 404],
      ['/nope', 404],
      ['/health/live', 200],
    ] as const) {
      const headers: Record<string, string> =
        status === 401 ? {} : { authorization: `Bearer ${token}` }
      const response = await send(path, { headers })
      assert.equal(response.status, status, `${path}: ${response.text}`)
      assertSecurityHeaders(assert, response.headers, path)
    }
  })

  test('a malformed X-Request-Id is replaced by a fresh UUID, in the response and the logs', async ({
    assert,
  }) => {
    for (const sent of ['a'.repeat(65), 'has space', '"quoted"', '<script>', '-leading-dash']) {
      const mark = logMark()
      // An unknown entry: answered 404 and logged (WARN) with the request id.
      const response = await send('/entries/99999999999999', {
        headers: { 'authorization': `Bearer ${token}`, 'x-request-id': sent },
      })
      assert.equal(response.status, 404)
      const echoed = response.headers.get('x-request-id')!
      assert.match(echoed, UUID, `sent ${sent}`)
      const lines = logLinesSince(mark)
      assert.isAbove(lines.length, 0)
      for (const line of lines) {
        assert.notInclude(JSON.stringify(line), sent)
        if (line.request_id !== undefined) assert.equal(line.request_id, echoed)
      }
    }
  })

  test('a well-formed X-Request-Id is kept (response and logs)', async ({ assert }) => {
    const sent = `trace-${randomBytes(8).toString('hex')}.1:2_3`
    const mark = logMark()
    const response = await send('/entries/99999999999999', {
      headers: { 'authorization': `Bearer ${token}`, 'x-request-id': sent },
    })
    assert.equal(response.headers.get('x-request-id'), sent)
    const mine = logLinesSince(mark).filter((line) => line.request_id === sent)
    assert.isAbove(mine.length, 0)
  })
})
