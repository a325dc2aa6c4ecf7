import { randomBytes } from 'node:crypto'
import { test } from '@japa/runner'
import type { ApiClient as JapaClient, ApiResponse } from '@japa/api-client'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import type { Ability } from '#app/abilities'
import { KekService } from '#services/kek_service'
import { createToken, entriesToken } from '#tests/helpers/auth'
import { rememberSecret } from '#tests/helpers/secrets'

const kek = `fn-auth-${randomBytes(3).toString('hex')}`

type Route = 'create' | 'read' | 'update' | 'delete'

/** The ability each route needs. */
const NEEDS: Record<Route, Ability> = {
  create: 'entries:write',
  read: 'entries:read',
  update: 'entries:write',
  delete: 'entries:write',
}

function assertError(assert: any, response: ApiResponse, status: number, code: string) {
  assert.equal(response.status(), status, response.text())
  const body = response.body()
  assert.isArray(body.errors)
  assert.equal(body.errors[0].code, code)
  assert.isString(body.errors[0].message)
}

/** Calls a route; `token` undefined sends no Authorization header. */
function call(client: JapaClient, route: Route, id: string, token?: string, header?: string) {
  let request =
    route === 'create'
      ? client.post('/entries').json({ kek, data: { route } })
      : route === 'read'
        ? client.get(`/entries/${id}`)
        : route === 'update'
          ? client.put(`/entries/${id}`).json({ data: { route } })
          : client.delete(`/entries/${id}`)
  if (header !== undefined) request = request.header('authorization', header)
  else if (token !== undefined) request = request.bearerToken(token)
  return request
}

test.group('auth / entries routes', (group) => {
  let writer: string
  /** An entry to read / update / delete (recreated when a test deleted it). */
  let id: string

  group.setup(async () => {
    const keks = await app.container.make(KekService)
    await keks.create(kek, { ifMissing: true })
    writer = await entriesToken()
  })
  async function freshEntry(client: JapaClient) {
    const response = await call(client, 'create', '', writer)
    response.assertStatus(201)
    id = response.body().id
    return id
  }

  const routes: Route[] = ['create', 'read', 'update', 'delete']

  for (const route of routes) {
    test(`${route}: no token → 401 E_UNAUTHORIZED_ACCESS`, async ({ client, assert }) => {
      await freshEntry(client)
      const before = await db.from('vault_entries').where('kek_name', kek).count('* as n')
      assertError(assert, await call(client, route, id), 401, 'E_UNAUTHORIZED_ACCESS')
      const after = await db.from('vault_entries').where('kek_name', kek).count('* as n')
      assert.equal(Number(after[0].n), Number(before[0].n))
    })

    test(`${route}: malformed or unknown tokens → 401`, async ({ client, assert }) => {
      await freshEntry(client)
      const good = await createToken(['entries:read', 'entries:write'])
      const dot = good.lastIndexOf('.')
      const wrongSecret = good.slice(0, dot + 1) + 'A'.repeat(good.length - dot - 1)
      for (const header of [
        'Bearer',
        'Bearer ',
        'Bearer not-a-token',
        'Basic dXNlcjpwYXNz',
        `Token ${good}`,
        `Bearer ${wrongSecret}`,
        `Bearer rwp_OTk5OTk.${good.slice(dot + 1)}`,
      ]) {
        assertError(
          assert,
          await call(client, route, id, undefined, header),
          401,
          'E_UNAUTHORIZED_ACCESS'
        )
      }
    })

    test(`${route}: a token without "${NEEDS[route]}" → 403 E_FORBIDDEN`, async ({
      client,
      assert,
    }) => {
      const others = (
        ['entries:read', 'entries:write', 'rotation:read', 'rotation:admin'] as Ability[]
      ).filter((a) => a !== NEEDS[route])
      for (const abilities of [[], others]) {
        await freshEntry(client)
        const token = await createToken(abilities)
        const response = await call(client, route, id, token)
        assertError(assert, response, 403, 'E_FORBIDDEN')
        assert.include(response.body().errors[0].message, NEEDS[route])
        assert.notInclude(response.text(), token)
      }
      // Nothing changed: the entry is still there and unchanged.
      const read = await call(client, 'read', id, writer)
      read.assertStatus(200)
      assert.deepEqual(read.body().data, { route: 'create' })
    })

    test(`${route}: a token with only "${NEEDS[route]}" is allowed`, async ({ client, assert }) => {
      await freshEntry(client)
      const token = await createToken([NEEDS[route]])
      const response = await call(client, route, id, token)
      assert.equal(
        response.status(),
        { create: 201, read: 200, update: 200, delete: 204 }[route],
        response.text()
      )
    })

    test(`${route}: an expired token → 401`, async ({ client, assert }) => {
      await freshEntry(client)
      const token = await createToken(['entries:read', 'entries:write'], { expiresIn: '1h' })
      const tokenId = Buffer.from(token.slice(4, token.indexOf('.')), 'base64url').toString()
      await db
        .from('auth_access_tokens')
        .where('id', tokenId)
        .update({ expires_at: new Date(Date.now() - 60_000) })
      assertError(assert, await call(client, route, id, token), 401, 'E_UNAUTHORIZED_ACCESS')
    })
  }

  test('a token of a deleted API client → 401', async ({ client, assert }) => {
    await freshEntry(client)
    const token = await createToken(['entries:read'], { name: 'to-be-deleted' })
    const allowed = await call(client, 'read', id, token)
    allowed.assertStatus(200)
    await db.from('api_clients').where('name', 'to-be-deleted').delete()
    assertError(assert, await call(client, 'read', id, token), 401, 'E_UNAUTHORIZED_ACCESS')
  })

  test('401 and 403 bodies never echo the token', async ({ client, assert }) => {
    await freshEntry(client)
    const token = await createToken(['rotation:read'])
    const forbidden = await call(client, 'read', id, token)
    assert.notInclude(forbidden.text(), token)
    const bogus = `rwp_MQ.${randomBytes(24).toString('base64url')}`
    rememberSecret(bogus, 'bogus token')
    const unauthorized = await call(client, 'read', id, bogus)
    assert.equal(unauthorized.status(), 401)
    assert.notInclude(unauthorized.text(), bogus)
  })

  test('GET /health/live needs no token', async ({ client }) => {
    const response = await client.get('/health/live')
    response.assertStatus(200)
    response.assertBody({ status: 'ok' })
  })
})
