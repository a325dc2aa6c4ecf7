import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib'
import { test } from '@japa/runner'
import { waitFor } from '#tests/helpers/wait'
import app from '@adonisjs/core/services/app'
import server from '@adonisjs/core/services/server'
import db from '@adonisjs/lucid/services/db'
import { createNodeServer, type NodeServerTimeouts } from '#app/http/node_server'
import { KekService } from '#services/kek_service'
import { createToken } from '#tests/helpers/auth'
import { secretMarker } from '#tests/helpers/secrets'
import { freePort } from '../../bin/embedded_postgres.js'
import { logLinesSince, logMark, send } from './support/http.js'

const kek = `fn-reqh-${randomBytes(3).toString('hex')}`

async function rowCount(): Promise<number> {
  const [row] = await db.from('vault_entries').where('kek_name', kek).count('* as n')
  return Number(row.n)
}

let token: string
let admin: string

async function setup() {
  await app.container.make(KekService).then((keks) => keks.create(kek, { ifMissing: true }))
  token ??= await createToken(['entries:read', 'entries:write'])
  admin ??= await createToken(['rotation:read', 'rotation:admin'])
}

function post(path: string, headers: Record<string, string>, body?: string | Buffer) {
  return send(path, { method: 'POST', headers, body })
}

test.group('request hardening / ids out of the bigint range → 404', (group) => {
  group.setup(setup)

  test('rotation ids: GET and cancel of 2^64-ish, 2^63, 0 → 404 E_ROTATION_NOT_FOUND', async ({
    assert,
  }) => {
    const mark = logMark()
    for (const id of ['99999999999999999999', '9223372036854775808', '0', '0'.repeat(70) + '1']) {
      const show = await send(`/rotations/${id}`, { headers: { authorization: `Bearer ${admin}` } })
      assert.equal(show.status, 404, `${id}: ${show.text}`)
      assert.equal(show.code, 'E_ROTATION_NOT_FOUND')
      const cancel = await post(`/rotations/${id}/cancel`, { authorization: `Bearer ${admin}` })
      assert.equal(cancel.status, 404, `${id}: ${cancel.text}`)
      assert.equal(cancel.code, 'E_ROTATION_NOT_FOUND')
    }
    assert.deepEqual(
      logLinesSince(mark).filter((line) => line.level >= 50),
      []
    )
  })

  test('entry ids: GET, PUT and DELETE out of range → 404 E_ENTRY_NOT_FOUND', async ({
    assert,
  }) => {
    const auth = { 'authorization': `Bearer ${token}`, 'content-type': 'application/json' }
    for (const id of ['99999999999999999999', '9223372036854775808', '0']) {
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const response = await send(`/entries/${id}`, {
          method,
          headers: auth,
          body: method === 'PUT' ? '{"data":1}' : undefined,
        })
        assert.equal(response.status, 404, `${method} ${id}: ${response.text}`)
        assert.equal(response.code, 'E_ENTRY_NOT_FOUND')
      }
    }
  })

  test('the largest bigint is an id (unknown → 404 E_ROTATION_NOT_FOUND)', async ({ assert }) => {
    const auth = { authorization: `Bearer ${admin}` }
    const max = await send('/rotations/9223372036854775807', { headers: auth })
    assert.equal(max.status, 404)
    assert.equal(max.code, 'E_ROTATION_NOT_FOUND')
  })
})

test.group('request hardening / bodies are read after authentication', (group) => {
  group.setup(setup)

  test('without a token, any body (garbage gzip/br, bad JSON, deep) → 401, never parsed', async ({
    assert,
  }) => {
    const bodies: Array<[Record<string, string>, string | Buffer]> = [
      [{ 'content-encoding': 'gzip' }, 'garbage, not gzip'],
      [{ 'content-encoding': 'br' }, 'garbage, not brotli'],
      [{}, '{not json'],
      [{}, '['.repeat(2400) + ']'.repeat(2400)],
      [{ 'content-type': 'text/plain' }, 'hello'],
    ]
    for (const [headers, body] of bodies) {
      const response = await post(
        '/entries',
        { 'content-type': 'application/json', ...headers },
        body
      )
      assert.equal(response.status, 401, response.text)
      assert.equal(response.code, 'E_UNAUTHORIZED_ACCESS')
    }
  })

  test('corrupt gzip / deflate / br bodies → 400 E_INVALID_JSON; unknown coding → 415', async ({
    assert,
  }) => {
    const mark = logMark()
    const before = await rowCount()
    for (const coding of ['gzip', 'deflate', 'br']) {
      const response = await post(
        '/entries',
        {
          'authorization': `Bearer ${token}`,
          'content-type': 'application/json',
          'content-encoding': coding,
        },
        'garbage, not compressed'
      )
      assert.equal(response.status, 400, `${coding}: ${response.text}`)
      assert.equal(response.code, 'E_INVALID_JSON')
    }
    const unknown = await post(
      '/entries',
      {
        'authorization': `Bearer ${token}`,
        'content-type': 'application/json',
        'content-encoding': 'compress',
      },
      'x'
    )
    assert.equal(unknown.status, 415, unknown.text)
    assert.equal(unknown.code, 'E_UNSUPPORTED_MEDIA_TYPE')
    assert.equal(await rowCount(), before)
    assert.deepEqual(
      logLinesSince(mark).filter((line) => line.level >= 50),
      []
    )
  })

  test('well-formed gzip, deflate and br bodies are accepted', async ({ assert }) => {
    const json = JSON.stringify({ kek, data: { compressed: true } })
    for (const [coding, body] of [
      ['gzip', gzipSync(json)],
      ['deflate', deflateSync(json)],
      ['br', brotliCompressSync(json)],
    ] as const) {
      const response = await post(
        '/entries',
        {
          'authorization': `Bearer ${token}`,
          'content-type': 'application/json',
          'content-encoding': coding,
        },
        body
      )
      assert.equal(response.status, 201, `${coding}: ${response.text}`)
    }
  })

  test('a small gzip that inflates past 1 MB → 413 E_REQUEST_ENTITY_TOO_LARGE', async ({
    assert,
  }) => {
    const bomb = gzipSync(`{"kek":"${kek}","data":"${' '.repeat(4 * 1024 * 1024)}"}`)
    assert.isBelow(bomb.length, 10_000)
    const response = await post(
      '/entries',
      {
        'authorization': `Bearer ${token}`,
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      },
      bomb
    )
    assert.equal(response.status, 413, response.text)
    assert.equal(response.code, 'E_REQUEST_ENTITY_TOO_LARGE')
  })

  test('JSON nested 2,400 deep → 400 E_INVALID_JSON naming the limit; 60 deep is fine', async ({
    assert,
  }) => {
    const deep = `{"kek":"${kek}","data":${'['.repeat(2400)}${']'.repeat(2400)}}`
    const response = await post(
      '/entries',
      { 'authorization': `Bearer ${token}`, 'content-type': 'application/json' },
      deep
    )
    assert.equal(response.status, 400, response.text)
    assert.equal(response.code, 'E_INVALID_JSON')
    assert.include(response.text, 'nested deeper than 64')
    assert.notInclude(response.text, 'call stack')

    const fine = `{"kek":"${kek}","data":${'['.repeat(60)}"ok"${']'.repeat(60)}}`
    const ok = await post(
      '/entries',
      { 'authorization': `Bearer ${token}`, 'content-type': 'application/json' },
      fine
    )
    assert.equal(ok.status, 201, ok.text)
  })
})

test.group('request hardening / JSON only, body only', (group) => {
  group.setup(setup)

  test('POST /entries?kek=…&data=secret (no body) stores nothing → 422', async ({ assert }) => {
    const marker = secretMarker('query-string')
    const before = await rowCount()
    const response = await post(`/entries?kek=${kek}&data=${marker}`, {
      authorization: `Bearer ${token}`,
    })
    assert.equal(response.status, 422, response.text)
    assert.equal(response.code, 'E_VALIDATION_ERROR')
    const withBody = await post(
      `/entries?data=${marker}`,
      { 'authorization': `Bearer ${token}`, 'content-type': 'application/json' },
      JSON.stringify({ kek })
    )
    assert.equal(withBody.status, 422, withBody.text)
    assert.equal(await rowCount(), before)
  })

  test('form, text, multipart and non-UTF-8 JSON bodies → 415 E_UNSUPPORTED_MEDIA_TYPE', async ({
    assert,
  }) => {
    const marker = secretMarker('form-body')
    const created = await post(
      '/entries',
      { 'authorization': `Bearer ${token}`, 'content-type': 'application/json' },
      JSON.stringify({ kek, data: 'original' })
    )
    const id = JSON.parse(created.text).id
    const before = await rowCount()
    const cases: Array<[string, string]> = [
      ['application/x-www-form-urlencoded', `kek=${kek}&data=${marker}`],
      ['text/plain', JSON.stringify({ kek, data: marker })],
      [
        'multipart/form-data; boundary=x',
        `--x\r\nContent-Disposition: form-data; name="data"\r\n\r\n${marker}\r\n--x--\r\n`,
      ],
      ['application/json; charset=latin1', JSON.stringify({ kek, data: marker })],
      ['application/jsonx', JSON.stringify({ kek, data: marker })],
    ]
    for (const [type, body] of cases) {
      for (const [method, path, auth] of [
        ['POST', '/entries', token],
        ['PUT', `/entries/${id}`, token],
        ['POST', '/rotations', admin],
      ]) {
        const response = await send(path, {
          method,
          headers: { 'authorization': `Bearer ${auth}`, 'content-type': type },
          body,
        })
        assert.equal(response.status, 415, `${method} ${path} ${type}: ${response.text}`)
        assert.equal(response.code, 'E_UNSUPPORTED_MEDIA_TYPE')
        assert.notInclude(response.text, marker)
      }
    }
    assert.equal(await rowCount(), before)
    const read = await send(`/entries/${id}`, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(JSON.parse(read.text).data, 'original')
  })

  test('application/json; charset=utf-8 is accepted', async ({ assert }) => {
    const response = await post(
      '/entries',
      { 'authorization': `Bearer ${token}`, 'content-type': 'application/json; charset=UTF-8' },
      JSON.stringify({ kek, data: 'utf8' })
    )
    assert.equal(response.status, 201, response.text)
  })
})

test.group('request hardening / server time limits', () => {
  test('the suite server got the configured limits (not Node’s 300 s / 60 s)', async ({
    assert,
  }) => {
    const configured = app.config.get<NodeServerTimeouts>('app.serverTimeouts')
    const node = server.getNodeServer()!
    assert.equal(node.requestTimeout, configured.requestTimeout)
    assert.equal(node.headersTimeout, configured.headersTimeout)
    assert.isAtMost(configured.requestTimeout, 60_000)
    assert.isBelow(configured.headersTimeout, configured.requestTimeout)
  })

  test('a stalled partial body is cut off at requestTimeout', async ({ assert, cleanup }) => {
    const node = createNodeServer(server.handle.bind(server), {
      requestTimeout: 500,
      headersTimeout: 400,
      keepAliveTimeout: 200,
      connectionsCheckingInterval: 50,
    })
    const port = await freePort()
    await new Promise<void>((resolve) => node.listen(port, '127.0.0.1', resolve))
    cleanup(() => new Promise<void>((resolve) => node.close(() => resolve())))

    const socket = connect(port, '127.0.0.1')
    let closed = false
    socket.on('close', () => (closed = true))
    socket.on('error', () => {})
    socket.on('data', () => {})
    await new Promise<void>((resolve) => socket.once('connect', resolve))
    const started = Date.now()
    socket.write(
      `POST /entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"kek":`
    )
    await waitFor(() => closed, {
      timeoutMs: 10_000,
      what: 'the server to close the stalled connection',
    })
    assert.isBelow(Date.now() - started, 10_000)
    socket.destroy()
  })
})
