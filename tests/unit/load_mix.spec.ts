/*
|--------------------------------------------------------------------------
| The load harness's request mix (npm run load), through real autocannon
|--------------------------------------------------------------------------
|
| Against a plain node:http server that checks each request: a GET must
| carry no body and no Content-Length (a stale one, left by an earlier
| POST in the headers autocannon reuses, made the server wait for a body
| and stalled every connection after a few requests), writes must carry
| the JSON the API takes. The harness must count such an answer as failed.
|
*/
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from '@japa/runner'
import { startPhase } from '../../bin/load/cannon.js'
import { prng } from '../../bin/load/mix.js'

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = ''
    req.on('data', (chunk) => (body += chunk))
    req.on('end', () => resolve(body))
  })
}

/** A server answering 400 to any request the API would not take, 2xx otherwise. */
async function checkingServer() {
  const seen = { GET: 0, POST: 0, PUT: 0, refused: 0 }
  const server = createServer(async (req, res) => {
    const body = await readBody(req)
    const method = req.method as 'GET' | 'POST' | 'PUT'
    let ok = req.headers.authorization === 'Bearer t0ken'
    if (method === 'GET') {
      ok &&= body === '' && req.headers['content-length'] === undefined
      ok &&= /^\/entries\/(1[0-9]|20)$/.test(req.url ?? '')
    } else {
      const parsed = JSON.parse(body || 'null')
      ok &&= typeof parsed?.data?.n === 'number'
      ok &&=
        method === 'POST'
          ? parsed.kek === 'k1' && req.url === '/entries'
          : /^\/entries\/\d+$/.test(req.url ?? '')
    }
    seen[method]++
    if (!ok) seen.refused++
    res.writeHead(ok ? (method === 'POST' ? 201 : 200) : 400, {
      'content-type': 'application/json',
    })
    res.end('{}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, seen, port: (server.address() as AddressInfo).port }
}

test.group('load harness / request mix', () => {
  test('every kind is sent well-formed on every connection, over and over', async ({
    assert,
    cleanup,
  }) => {
    const { server, seen, port } = await checkingServer()
    cleanup(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const stats = await startPhase(
      {
        url: `http://127.0.0.1:${port}`,
        token: 't0ken',
        rate: 400,
        connections: 4,
        kek: 'k1',
        ids: { minId: 10, maxId: 20 },
        shares: { reads: 50, writes: 25, updates: 25 },
      },
      'check',
      60,
      7,
      120
    ).done
    assert.equal(seen.refused, 0)
    // A stalled connection would time its requests out (socket errors) instead.
    assert.equal(stats.failed, 0)
    assert.equal(stats.responses, 120, 'every connection keeps sending (none stalls)')
    for (const method of ['GET', 'POST', 'PUT'] as const) assert.isAbove(seen[method], 5, method)
    assert.equal(stats.responses, seen.GET + seen.POST + seen.PUT)
    assert.deepEqual(Object.keys(stats.statusCodes).sort(), ['200', '201'])
  }).timeout(30_000)

  test('answers outside 2xx are counted as failed', async ({ assert, cleanup }) => {
    const { server, port } = await checkingServer()
    cleanup(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const stats = await startPhase(
      {
        url: `http://127.0.0.1:${port}`,
        token: 'wrong',
        rate: 100,
        connections: 2,
        kek: 'k1',
        ids: { minId: 10, maxId: 20 },
        shares: { reads: 100, writes: 0, updates: 0 },
      },
      'refused',
      1,
      7
    ).done
    assert.isAbove(stats.responses, 0)
    assert.equal(stats.non2xx, stats.responses)
    assert.equal(stats.failed, stats.non2xx + stats.socketErrors)
  }).timeout(30_000)

  test('refuses a target off the loopback interface', ({ assert }) => {
    assert.throws(
      () =>
        startPhase(
          {
            url: 'http://192.0.2.1:80',
            token: 't',
            rate: 1,
            connections: 1,
            kek: 'k',
            ids: { minId: 1, maxId: 1 },
            shares: { reads: 100, writes: 0, updates: 0 },
          },
          'x',
          1,
          1
        ),
      /only sends to the loopback/
    )
  })

  test('the same seed gives the same choices', ({ assert }) => {
    const a = prng(42)
    const b = prng(42)
    const first = Array.from({ length: 5 }, () => a())
    assert.deepEqual(
      first,
      Array.from({ length: 5 }, () => b())
    )
    assert.notDeepEqual(first, Array.from({ length: 5 }, prng(43)))
  })
})
