import { randomBytes } from 'node:crypto'
import { test } from '@japa/runner'
import { runAce } from '#tests/helpers/ace'
import db from '@adonisjs/lucid/services/db'
import { rememberToken } from '#tests/helpers/secrets'
import { spawnAce } from '#tests/helpers/ace_child'

/*
| token:create's default lifetime, token:list and token:revoke through the
| app's real Ace kernel, against the run's database and HTTP server.
*/

const run = randomBytes(3).toString('hex')
/** The shared in-process runner, with every line joined for messages. */
async function ace(name: string, argv: string[]) {
  const result = await runAce(name, argv)
  return { ...result, all: result.all.join('\n') }
}

function json(stdout: string[]) {
  const lines = stdout.filter((line) => line.trim().startsWith('{'))
  if (lines.length !== 1) throw new Error(`expected one JSON line, got: ${stdout.join('\n')}`)
  return JSON.parse(lines[0])
}

async function create(name: string, extra: string[] = []) {
  const out = await ace('token:create', [
    '--name',
    name,
    '--abilities',
    'entries:read',
    '--json',
    ...extra,
  ])
  if (out.exitCode !== 0) throw new Error(out.all)
  const body = json(out.stdout)
  rememberToken(body.token)
  return body as { tokenId: string; clientId: number; token: string; expiresAt: string | null }
}

test.group('commands / token lifetime', () => {
  test('token:create without --expires-in expires after 90 days; "never" only when asked', async ({
    assert,
  }) => {
    const before = Date.now()
    const made = await create(`life-default-${run}`)
    const ninety = 90 * 86_400_000
    assert.isAtLeast(Date.parse(made.expiresAt!), before + ninety - 1000)
    assert.isAtMost(Date.parse(made.expiresAt!), Date.now() + ninety + 1000)
    const row = await db.from('auth_access_tokens').where('id', made.tokenId).first()
    assert.isNotNull(row.expires_at, 'stored with its expiry')

    const forever = await create(`life-never-${run}`, ['--expires-in', 'never'])
    assert.isNull(forever.expiresAt)
  })
})

test.group('commands / token:list', () => {
  test('--json lists every token with client, abilities and expiry, never its value or hash', async ({
    assert,
  }) => {
    const made = await create(`list-${run}`, ['--expires-in', '2h'])
    const out = await ace('token:list', ['--json'])
    assert.equal(out.exitCode, 0, out.all)
    const { tokens } = json(out.stdout)
    const listed = tokens.find((t: any) => t.tokenId === made.tokenId)
    assert.deepInclude(listed, {
      tokenId: made.tokenId,
      clientId: made.clientId,
      clientName: `list-${run}`,
      abilities: ['entries:read'],
      expiresAt: made.expiresAt,
      expired: false,
      lastUsedAt: null,
    })
    const secret = made.token.split('.').pop()!
    const hashes = await db.from('auth_access_tokens').select('hash')
    assert.notInclude(out.all, secret, 'no token value')
    for (const { hash } of hashes) assert.notInclude(out.all, hash, 'no hash')
  })

  test('human output is a table with the id and the client', async ({ assert }) => {
    const made = await create(`table-${run}`)
    const out = await ace('token:list', [])
    assert.equal(out.exitCode, 0, out.all)
    assert.include(out.all, `table-${run} (#${made.clientId})`)
    assert.notInclude(out.all, made.token)
  })
})

test.group('commands / token:revoke', () => {
  test('revokes a token: it stops working at once and leaves the list', async ({
    assert,
    client,
  }) => {
    const made = await create(`revoke-${run}`)
    const ok = await client.get('/entries/999999999').bearerToken(made.token)
    ok.assertStatus(404)

    const out = await ace('token:revoke', [made.tokenId, '--json'])
    assert.equal(out.exitCode, 0, out.all)
    assert.equal(json(out.stdout).revoked.tokenId, made.tokenId)

    const refused = await client.get('/entries/999999999').bearerToken(made.token)
    refused.assertStatus(401)
    const listed = await ace('token:list', ['--json'])
    const list = json(listed.stdout)
    assert.notInclude(
      list.tokens.map((t: any) => t.tokenId),
      made.tokenId
    )
  })

  test('bad or unknown ids exit 1 with one E_ line and revoke nothing: {name}')
    .with([
      { name: 'unknown id', id: '2147483000', code: 'E_TOKEN_NOT_FOUND' },
      { name: 'not a number', id: 'abc', code: 'E_VALIDATION_ERROR' },
      { name: 'zero', id: '0', code: 'E_VALIDATION_ERROR' },
      { name: 'beyond the id range', id: '99999999999999999999', code: 'E_VALIDATION_ERROR' },
      { name: 'negative', id: '-1', code: 'E_VALIDATION_ERROR' },
    ])
    .run(async ({ assert }, { id, code }) => {
      const [before] = await db.from('auth_access_tokens').count('* as n')
      const out = await ace('token:revoke', [id])
      assert.equal(out.exitCode, 1)
      assert.lengthOf(out.stderr, 1, out.all)
      assert.include(out.stderr[0], `${code}:`)
      const [after] = await db.from('auth_access_tokens').count('* as n')
      assert.equal(Number(after.n), Number(before.n))
    })

  test('--json errors are one JSON object with the code', async ({ assert }) => {
    const out = await ace('token:revoke', ['2147483001', '--json'])
    assert.equal(out.exitCode, 1)
    assert.match(json(out.stdout).error, /^E_TOKEN_NOT_FOUND: /)
  })
})

test.group('commands / token --help', () => {
  test('{name} --help describes the command and its flags')
    .with([
      { name: 'token:list', expects: ['--json', 'token:revoke <id>'] },
      { name: 'token:revoke', expects: ['Id of the access token', 'E_TOKEN_NOT_FOUND'] },
      { name: 'token:create', expects: ['--expires-in', 'default: 90d', 'never'] },
    ])
    .run(async ({ assert }, { name, expects }) => {
      const child = spawnAce([name, '--help'])
      assert.equal(await child.exited, 0, child.output())
      for (const text of expects) assert.include(child.output(), text)
    })
    .timeout(60_000)
})
