import { readFileSync } from 'node:fs'
import { test } from '@japa/runner'
import { runAce } from '#tests/helpers/ace'
import app from '@adonisjs/core/services/app'
import { KmsManager } from '#kms/kms_manager'
import { entriesToken } from '#tests/helpers/auth'
import { kekName } from '#tests/helpers/rotation'
import {
  randomId,
  startTransitServer,
  vaultDriverFor,
  type TransitFixture,
} from '#tests/helpers/transit'

/*
| A Vault error's text can name its storage backend's host and user. Clients
| (HTTP JSON, a CLI line) get a fixed message per code; the text is logged
| once, at the KMS boundary. A real Vault-compatible server over HTTP
| (node-vault) answers with such a text through its fault injection.
*/

/** A Vault-like internal error naming a database host and user, unique to this call. */
function internalDetail() {
  const id = randomId()
  return {
    user: `vault_storage_${id}`,
    host: `pg-internal-${id}.corp.example`,
    text: `failed to read key: pq: password authentication failed for user "vault_storage_${id}" (host=pg-internal-${id}.corp.example port=5432)`,
  }
}

/** Lines of the run's log file (LOG_FILE, written synchronously) that mention `needle`. */
function logLinesWith(needle: string): Array<Record<string, any>> {
  return readFileSync(process.env.LOG_FILE!, 'utf8')
    .split('\n')
    .filter((line) => line.includes(needle))
    .map((line) => JSON.parse(line))
}

test.group('KMS error details: logged at the boundary, never answered', (group) => {
  let fixture: TransitFixture
  let token: string
  const kek = kekName('fn-kms-detail')

  group.setup(async () => {
    fixture = await startTransitServer()
    // One attempt: each injected fault is the final answer.
    const { driver } = vaultDriverFor(fixture, {
      retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    })
    await driver.createKey(kek)
    const manager = new KmsManager({ default: 'vault', drivers: { vault: () => driver } })
    app.container.swap(KmsManager, () => manager)
    token = await entriesToken()
    return async () => {
      app.container.restore(KmsManager)
      await fixture.close()
    }
  })
  group.each.teardown(() => fixture.server.clearFaults())

  const cases = [
    {
      vaultStatus: 500,
      status: 503,
      code: 'E_KMS_UNAVAILABLE',
      message: 'The KMS is unavailable; try again later',
    },
    {
      vaultStatus: 400,
      status: 422,
      code: 'E_KMS_REJECTED',
      message: 'The KMS rejected the request',
    },
    {
      vaultStatus: 403,
      status: 502,
      code: 'E_KMS_DENIED',
      message: "The KMS denied the request (permissions of the app's KMS identity)",
    },
  ]
  for (const expected of cases) {
    test(`POST /entries, Vault answers ${expected.vaultStatus}: ${expected.status} ${expected.code} with the fixed message; the detail is in the log once`, async ({
      client,
      assert,
    }) => {
      const detail = internalDetail()
      fixture.server.injectFaults([{ status: expected.vaultStatus, message: detail.text }])

      const response = await client.post('/entries').bearerToken(token).json({ kek, data: 'x' })

      assert.equal(response.status(), expected.status, response.text())
      assert.deepEqual(response.body(), {
        errors: [{ code: expected.code, message: expected.message }],
      })
      assert.notInclude(response.text(), detail.user)
      assert.notInclude(response.text(), detail.host)
      assert.equal(fixture.server.requestLog.at(-1)?.status, expected.vaultStatus)

      const lines = logLinesWith(detail.user)
      assert.lengthOf(lines, 1, 'logged once, at the KMS boundary')
      assert.equal(lines[0].msg, 'KMS call failed')
      assert.equal(lines[0].level, 40)
      assert.include(lines[0], { kms: 'vault', kek, code: expected.code })
      assert.include(lines[0].detail, detail.text)
      assert.include(lines[0].detail, detail.host)
    })
  }

  test('a command prints one E_CODE line with the fixed message, not the detail', async ({
    assert,
  }) => {
    const detail = internalDetail()
    fixture.server.injectFaults([{ status: 500, message: detail.text }])

    const run = await runAce('kek:create', [kekName('fn-kms-detail-cli')])

    assert.equal(run.exitCode, 1)
    const output = run.all.join('\n')
    assert.include(output, 'E_KMS_UNAVAILABLE: The KMS is unavailable; try again later')
    assert.notInclude(output, detail.user)
    assert.notInclude(output, detail.host)
    assert.lengthOf(logLinesWith(detail.user), 1)
  })
})
