import { randomBytes } from 'node:crypto'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { Secret } from '@adonisjs/core/helpers'
import type { VaultKmsDriver } from '#kms/drivers/vault'
import { KmsManager } from '#kms/kms_manager'
import ApiClient from '#models/api_client'
import { Clock } from '#services/clock'
import { EntryService } from '#services/entry_service'
import { KekService } from '#services/kek_service'
import { runAce as ace } from '#tests/helpers/ace'
import { rememberToken } from '#tests/helpers/secrets'
import { startTransitServer, vaultDriverFor, type TransitFixture } from '#tests/helpers/transit'
import { realDriver } from './support/kms_doubles.js'

const run = randomBytes(3).toString('hex')
const kekName = (tag: string) => `fn-cmd-${tag}-${run}`

/** The one JSON line a --json command printed. */
function jsonOutput(stdout: string[]) {
  const lines = stdout.filter((line) => line.trim().startsWith('{'))
  if (lines.length !== 1) throw new Error(`expected one JSON line, got: ${stdout.join('\n')}`)
  return JSON.parse(lines[0])
}

async function count(table: string, where: Record<string, unknown> = {}) {
  const [row] = await db.from(table).where(where).count('* as n')
  return Number(row.n)
}

test.group('commands / token:create', () => {
  test('--json prints the token once in a "token" field; the token works', async ({
    assert,
    client,
  }) => {
    const name = `cmd-json-${run}`
    const out = await ace('token:create', [
      '--name',
      name,
      '--abilities',
      'entries:read,rotation:read',
      '--json',
    ])
    assert.equal(out.exitCode, 0, out.all.join('\n'))
    const body = jsonOutput(out.stdout)
    rememberToken(body.token)
    assert.equal(body.name, name)
    assert.deepEqual(body.abilities, ['entries:read', 'rotation:read'])
    // No --expires-in: the default lifetime, 90 days (tests/functional/token_commands.spec.ts).
    assert.isString(body.expiresAt)
    assert.match(body.token, /^rwp_/)
    assert.equal(out.all.join('\n').split(body.token).length - 1, 1, 'printed exactly once')

    const stored = await ApiClient.accessTokens.verify(new Secret(body.token))
    assert.isNotNull(stored)
    assert.deepEqual(stored!.abilities, ['entries:read', 'rotation:read'])
    // Stored hashed, never in clear.
    const rows = await db.from('auth_access_tokens').select('hash')
    assert.isFalse(rows.some((r) => body.token.includes(r.hash)))

    const response = await client.get('/entries/999999999').bearerToken(body.token)
    response.assertStatus(404)
  })

  test('human output prints the token on its own line, once', async ({ assert }) => {
    const out = await ace('token:create', [
      '--name',
      `cmd-human-${run}`,
      '--abilities',
      'entries:write',
      '--abilities',
      'rotation:admin',
    ])
    assert.equal(out.exitCode, 0, out.all.join('\n'))
    const tokens = out.stdout.filter((line) => /^rwp_\S+$/.test(line.trim()))
    assert.lengthOf(tokens, 1)
    rememberToken(tokens[0].trim())
    const stored = await ApiClient.accessTokens.verify(new Secret(tokens[0].trim()))
    assert.deepEqual(stored!.abilities, ['entries:write', 'rotation:admin'])
    assert.isTrue(out.all.some((line) => line.includes('entries:write, rotation:admin')))
  })

  test('--expires-in sets the expiry', async ({ assert }) => {
    const before = Date.now()
    const out = await ace('token:create', [
      '--name',
      `cmd-exp-${run}`,
      '--abilities',
      'entries:read',
      '--expires-in',
      '30d',
      '--json',
    ])
    assert.equal(out.exitCode, 0, out.all.join('\n'))
    const body = jsonOutput(out.stdout)
    rememberToken(body.token)
    const expires = Date.parse(body.expiresAt)
    const thirtyDays = 30 * 86_400_000
    assert.isAtLeast(expires, before + thirtyDays - 1000)
    assert.isAtMost(expires, Date.now() + thirtyDays + 1000)
  })

  test('bad input exits 1 with a message and creates nothing: {name}')
    .with([
      {
        name: 'unknown ability',
        argv: ['--name', 'x', '--abilities', 'entries:read,entries:delete'],
        message: 'Unknown ability "entries:delete"',
      },
      { name: 'no abilities', argv: ['--name', 'x'], message: 'abilities' },
      { name: 'empty abilities', argv: ['--name', 'x', '--abilities', ','], message: 'abilities' },
      { name: 'no name', argv: ['--abilities', 'entries:read'], message: 'name' },
      {
        name: 'bad duration',
        argv: ['--name', 'x', '--abilities', 'entries:read', '--expires-in', 'soon'],
        message: 'Invalid duration "soon"',
      },
      {
        name: 'zero duration',
        argv: ['--name', 'x', '--abilities', 'entries:read', '--expires-in', '0d'],
        message: 'Invalid duration',
      },
    ])
    .run(async ({ assert }, { argv, message }) => {
      const clients = await count('api_clients')
      const tokens = await count('auth_access_tokens')
      const out = await ace('token:create', argv)
      assert.equal(out.exitCode, 1)
      assert.lengthOf(out.stderr, 1)
      assert.include(out.stderr[0], 'E_VALIDATION_ERROR')
      assert.include(out.stderr[0], message)
      assert.equal(await count('api_clients'), clients)
      assert.equal(await count('auth_access_tokens'), tokens)
    })
})

test.group('commands / kek:create', () => {
  test('creates a KEK; again fails with E_KEK_EXISTS; --if-missing succeeds', async ({
    assert,
  }) => {
    const name = kekName('create')
    const first = await ace('kek:create', [name])
    assert.equal(first.exitCode, 0, first.all.join('\n'))
    assert.include(first.all.join('\n'), `Created KEK "${name}"`)
    const driver = await realDriver(name)
    const info = await driver.readKey(name)
    assert.equal(info?.latestVersion, 1)

    const again = await ace('kek:create', [name])
    assert.equal(again.exitCode, 1)
    assert.include(again.stderr.join('\n'), 'E_KEK_EXISTS')

    const ifMissing = await ace('kek:create', [name, '--if-missing', '--json'])
    assert.equal(ifMissing.exitCode, 0, ifMissing.all.join('\n'))
    const body = jsonOutput(ifMissing.stdout)
    assert.isFalse(body.created)
    assert.equal(body.name, name)
    assert.equal(body.latestVersion, 1)
  })

  test('--json on creation', async ({ assert }) => {
    const name = kekName('json')
    const out = await ace('kek:create', [name, '--json'])
    assert.equal(out.exitCode, 0, out.all.join('\n'))
    const body = jsonOutput(out.stdout)
    assert.isTrue(body.created)
    assert.equal(body.latestVersion, 1)
    assert.equal(body.minDecryptionVersion, 1)
    assert.lengthOf(body.versions, 1)
  })

  test('an invalid name exits 1 and creates nothing: {name}')
    .with([
      { name: 'slash', kek: 'a/b' },
      { name: 'space', kek: 'a b' },
      { name: 'leading dot', kek: '.hidden' },
      { name: 'too long', kek: 'k'.repeat(129) },
    ])
    .run(async ({ assert }, { kek }) => {
      const keys = await count('kms_keys')
      const out = await ace('kek:create', [kek])
      assert.equal(out.exitCode, 1)
      assert.include(out.stderr.join('\n'), 'Invalid KEK name')
      assert.equal(await count('kms_keys'), keys)
    })
})

test.group('commands / kek:list', (group) => {
  const name = kekName('list')
  let restore: (() => void) | undefined
  group.each.teardown(() => {
    restore?.()
    restore = undefined
  })

  test('versions with ages, latest, min decryption version and rows per version', async ({
    assert,
  }) => {
    const keks = await app.container.make(KekService)
    await keks.create(name)
    const entries = await app.container.make(EntryService)
    await entries.seed(name, { rows: 3, batchSize: 10 })
    const driver = await realDriver(name)
    await driver.rotateKey(name)
    await entries.seed(name, { rows: 2, batchSize: 10 })
    await driver.rotateKey(name)

    // A fixed clock: ages are exact.
    const info = await driver.readKey(name)
    const now = new Date(info!.versions[0].createdAt.getTime() + 90_061_000)
    const clock = new Clock()
    clock.now = () => now
    app.container.swap(Clock, () => clock)
    restore = () => app.container.restore(Clock)

    const out = await ace('kek:list', ['--json'])
    assert.equal(out.exitCode, 0, out.all.join('\n'))
    const kek = jsonOutput(out.stdout).keks.find((k: any) => k.name === name)
    assert.exists(kek)
    assert.equal(kek.latestVersion, 3)
    assert.equal(kek.minDecryptionVersion, 1)
    assert.equal(kek.rows, 5)
    assert.deepEqual(
      kek.versions.map((v: any) => [v.version, v.rows, v.decryptable, v.state]),
      [
        [1, 3, true, 'active'],
        [2, 2, true, 'active'],
        [3, 0, true, 'active'],
      ]
    )
    assert.equal(kek.versions[0].ageSeconds, 90_061)
    for (const v of kek.versions) {
      const created = info!.versions.find((x) => x.version === v.version)?.createdAt
      assert.exists(created, `v${v.version} in the KMS`)
      assert.equal(v.createdAt, created!.toISOString())
    }

    const human = await ace('kek:list', [])
    assert.equal(human.exitCode, 0)
    const text = human.all.join('\n')
    assert.include(text, name)
    assert.include(text, 'latest')
    assert.include(text, '1d 1h')
  })

  test('a retired version shows as not decryptable with its rows', async ({ assert }) => {
    const retired = kekName('retired')
    const keks = await app.container.make(KekService)
    await keks.create(retired)
    const entries = await app.container.make(EntryService)
    await entries.seed(retired, { rows: 2, batchSize: 10 })
    const driver = await realDriver(retired)
    await driver.rotateKey(retired)
    await driver.configureKey(retired, { minDecryptionVersion: 2 })

    const out = await ace('kek:list', ['--json'])
    const kek = jsonOutput(out.stdout).keks.find((k: any) => k.name === retired)
    assert.equal(kek.minDecryptionVersion, 2)
    const v1 = kek.versions.find((v: any) => v.version === 1)
    assert.equal(v1.rows, 2)
    assert.isFalse(v1.decryptable)
    assert.equal(v1.state, 'retired')
  })
})

test.group('commands / kek:list over the vault driver', () => {
  /** Runs `check` with the app's KMS being the vault driver over an in-process transit server. */
  async function withVaultKms(
    check: (kms: { driver: VaultKmsDriver; fixture: TransitFixture }) => Promise<void>
  ) {
    const fixture = await startTransitServer()
    const { driver } = vaultDriverFor(fixture)
    app.container.swap(
      KmsManager,
      () => new KmsManager({ default: 'vault', drivers: { vault: () => driver } })
    )
    try {
      await check({ driver, fixture })
    } finally {
      app.container.restore(KmsManager)
      await fixture.close()
    }
  }

  test('lists the KEKs the KMS holds (LIST keys), with or without rows', async ({ assert }) => {
    await withVaultKms(async ({ driver, fixture }) => {
      const name = kekName('vault-list')
      await driver.createKey(name)
      await driver.rotateKey(name)

      const out = await ace('kek:list', ['--json'])
      assert.equal(out.exitCode, 0, out.all.join('\n'))
      const kek = jsonOutput(out.stdout).keks.find((k: any) => k.name === name)
      assert.exists(kek, 'a KEK with no rows is listed from the KMS')
      assert.isTrue(kek.exists)
      assert.equal(kek.rows, 0)
      assert.deepEqual(
        kek.versions.map((v: any) => [v.version, v.state, v.rows]),
        [
          [1, 'active', 0],
          [2, 'active', 0],
        ]
      )
      assert.isTrue(
        fixture.server.requestLog.some((r) => r.method === 'GET' && r.path === '/v1/transit/keys')
      )
    })
  })

  test('a token that may not list keys still lists the KEKs rows name', async ({ assert }) => {
    await withVaultKms(async ({ driver, fixture }) => {
      const name = kekName('vault-nolist')
      await driver.createKey(name)
      const entries = await app.container.make(EntryService)
      await entries.seed(name, { rows: 2, batchSize: 10 })
      // A narrow Vault policy: the list is denied, reads of named keys are not.
      fixture.server.injectFaults([
        { status: 403, message: 'permission denied', pathIncludes: '/v1/transit/keys' },
      ])

      const out = await ace('kek:list', ['--json'])
      assert.equal(out.exitCode, 0, out.all.join('\n'))
      assert.equal(fixture.server.pendingFaults, 0, 'the list was asked and denied')
      const kek = jsonOutput(out.stdout).keks.find((k: any) => k.name === name)
      assert.equal(kek.rows, 2)
      assert.isTrue(kek.exists)
    })
  })
})

test.group('commands / demo:seed', () => {
  test('inserts n rows in batches; every row decrypts', async ({ assert }) => {
    const name = kekName('seed')
    const out = await ace('demo:seed', ['--kek', name, '--rows', '250', '--batch', '100', '--json'])
    assert.equal(out.exitCode, 0, out.all.join('\n'))
    const body = jsonOutput(out.stdout)
    assert.equal(body.rows, 250)
    assert.equal(body.batches, 3)
    assert.isTrue(body.kekCreated)
    assert.deepEqual(body.kekVersions, [1])
    assert.isAbove(body.rowsPerSecond, 0)

    const rows = await db
      .from('vault_entries')
      .where('kek_name', name)
      .orderBy('id')
      .select('id', 'kek_version', 'wrapped_dek')
    assert.lengthOf(rows, 250)
    assert.equal(String(rows[0].id), body.firstId)
    assert.equal(String(rows[249].id), body.lastId)
    assert.isTrue(rows.every((r) => r.kek_version === 1 && r.wrapped_dek.startsWith('vault:v1:')))
    assert.equal(new Set(rows.map((r) => r.wrapped_dek)).size, 250, 'one DEK per row')

    const entries = await app.container.make(EntryService)
    for (const [i, row] of rows.entries()) {
      const entry = await entries.find(String(row.id))
      assert.deepEqual(entry.data, { n: i, note: 'demo' })
    }
  })

  test('uses an existing KEK and prints progress lines and rows/s', async ({ assert }) => {
    const name = kekName('seed-existing')
    const created = await ace('kek:create', [name])
    assert.equal(created.exitCode, 0)
    const out = await ace('demo:seed', ['--kek', name, '--rows', '40', '--batch', '10'])
    assert.equal(out.exitCode, 0, out.all.join('\n'))
    const text = out.all.join('\n')
    assert.notInclude(text, 'Created KEK')
    assert.include(text, '40/40 rows')
    assert.match(text, /Seeded 40 rows into KEK ".+" in [0-9.]+s \([0-9]+ rows\/s\)/)
    assert.equal(await count('vault_entries', { kek_name: name }), 40)
  })

  test('bad input exits 1 with a message and writes nothing: {name}')
    .with([
      { name: 'no kek', argv: ['--rows', '5'] },
      { name: 'bad kek', argv: ['--kek', 'a b', '--rows', '5'] },
      { name: 'no rows', argv: ['--kek', 'fn-cmd-bad'] },
      { name: 'zero rows', argv: ['--kek', 'fn-cmd-bad', '--rows', '0'] },
      { name: 'fractional rows', argv: ['--kek', 'fn-cmd-bad', '--rows', '1.5'] },
      { name: 'zero batch', argv: ['--kek', 'fn-cmd-bad', '--rows', '5', '--batch', '0'] },
    ])
    .run(async ({ assert }, { argv }) => {
      const rows = await count('vault_entries')
      const keys = await count('kms_keys')
      const out = await ace('demo:seed', argv)
      assert.equal(out.exitCode, 1)
      assert.lengthOf(out.stderr, 1)
      assert.include(out.stderr[0], 'E_VALIDATION_ERROR')
      assert.equal(await count('vault_entries'), rows)
      assert.equal(await count('kms_keys'), keys)
    })
})
