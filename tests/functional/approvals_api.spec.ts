import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import env from '#start/env'
import { ready, Signer } from 'signify-ts'
import { signApproval } from '#app/governance/approval_request'
import { decodeKeystore } from '#app/governance/keystore'
import { ApprovalService } from '#services/approval_service'
import { Clock } from '#services/clock'
import { runAce } from '#tests/helpers/ace'
import { createToken } from '#tests/helpers/auth'
import { ShiftedClock } from '#tests/helpers/clock'
import {
  clockAheadOfAuditTrail,
  dualControlOn,
  governanceFixture,
  type GovernanceFixture,
} from '#tests/helpers/governance_fixture'
import type { TestAid } from '#tests/helpers/governance'
import { createKek, kekName, latestVersion, seed } from '#tests/helpers/rotation'
import { rememberSecret } from '#tests/helpers/secrets'
import { waitFor } from '#tests/helpers/wait'

/*
| Dual control over HTTP and the CLI (issue 12 items 3-4): /approvals,
| POST /rotations { approval }, approval:request|sign|status with a real
| keystore, and no approver secret anywhere on the server side.
*/

await ready()

const clock = new ShiftedClock()
let fx: GovernanceFixture
async function fixture() {
  fx ??= await governanceFixture()
  return fx
}

const PASSPHRASE = `approve me ${randomBytes(6).toString('hex')}`
rememberSecret(PASSPHRASE, 'keystore passphrase')

/** Runs a command with the keystore passphrase in the environment. */
async function ace(name: string, argv: string[]) {
  const previous = env.get('REWRAP_KEYSTORE_PASSPHRASE')
  env.set('REWRAP_KEYSTORE_PASSPHRASE', PASSPHRASE)
  try {
    return await runAce(name, argv)
  } finally {
    env.set('REWRAP_KEYSTORE_PASSPHRASE', previous as any)
    if (previous === undefined) delete process.env.REWRAP_KEYSTORE_PASSPHRASE
  }
}

function ok<T extends { exitCode: number | undefined; all: string[] }>(run: T): T {
  if ((run.exitCode ?? 0) !== 0) throw new Error(run.all.join('\n'))
  return run
}

function signatureBody(request: any, who: TestAid) {
  return { signature: signApproval(request, who.current, who.est) }
}

test.group('approvals API', (group) => {
  dualControlOn(group)
  group.each.setup(async () => {
    await clockAheadOfAuditTrail(clock)
    app.container.swap(Clock, () => clock)
    return () => app.container.restore(Clock)
  })

  test('POST /approvals, signatures, GET one and pending; then POST /rotations runs once', async ({
    assert,
    client,
  }) => {
    const f = await fixture()
    const kek = kekName('api')
    await createKek(kek)
    await seed(kek, 10)
    const admin = await createToken(['rotation:admin', 'rotation:read'])
    const signerToken = await createToken(['approvals:sign'])

    const none = await client.post('/rotations').bearerToken(admin).json({ kek })
    none.assertStatus(403)
    assert.equal(none.body().errors[0].code, 'E_APPROVAL_REQUIRED')

    const created = await client
      .post('/approvals')
      .bearerToken(admin)
      .json({ action: 'rotate', kek })
    created.assertStatus(201)
    const said = created.body().said
    assert.match(said, /^E[A-Za-z0-9_-]{43}$/)
    assert.deepEqual(created.body().missing, ['cto', 'security_officer'])
    assert.equal(created.body().document.d, said)
    assert.isFalse(created.body().approved)

    const pending = await client.get('/approvals').qs({ state: 'pending' }).bearerToken(admin)
    pending.assertStatus(200)
    assert.include(
      pending.body().data.map((a: { said: string }) => a.said),
      said
    )

    // The signature goes with a token that may only sign; rotation:admin alone may not.
    const document = created.body().document
    const refused = await client
      .post(`/approvals/${said}/signatures`)
      .bearerToken(admin)
      .json(signatureBody(document, f.cto))
    refused.assertStatus(403)
    const first = await client
      .post(`/approvals/${said}/signatures`)
      .bearerToken(signerToken)
      .json(signatureBody(document, f.cto))
    first.assertStatus(201)
    assert.deepEqual(first.body().missing, ['security_officer'])
    const twice = await client
      .post(`/approvals/${said}/signatures`)
      .bearerToken(signerToken)
      .json(signatureBody(document, f.cto))
    twice.assertStatus(403)
    assert.equal(twice.body().errors[0].code, 'E_SAME_APPROVER')

    const partial = await client.post('/rotations').bearerToken(admin).json({ kek, approval: said })
    partial.assertStatus(403)
    assert.equal(partial.body().errors[0].code, 'E_APPROVAL_INSUFFICIENT')
    assert.include(partial.body().errors[0].message, 'security_officer')

    const second = await client
      .post(`/approvals/${said}/signatures`)
      .bearerToken(signerToken)
      .json(signatureBody(document, f.officer))
    second.assertStatus(201)
    assert.isTrue(second.body().approved)
    assert.sameMembers(
      second.body().signers.map((s: { aid: string }) => s.aid),
      [f.cto.state.aid, f.officer.state.aid]
    )

    const started = await client.post('/rotations').bearerToken(admin).json({ kek, approval: said })
    started.assertStatus(202)
    const runId = started.body().id
    await waitFor(async () => {
      const run = await client.get(`/rotations/${runId}`).bearerToken(admin)
      return run.body().status === 'completed'
    })
    assert.equal(await latestVersion(kek), 2)

    const used = await client.post('/rotations').bearerToken(admin).json({ kek, approval: said })
    used.assertStatus(409)
    assert.equal(used.body().errors[0].code, 'E_APPROVAL_USED')
    const shown = await client.get(`/approvals/${said}`).bearerToken(admin)
    shown.assertStatus(200)
    assert.equal(shown.body().state, 'used')
    assert.equal(shown.body().usedBy, `rotation run #${runId}`)
  })

  test('bad input is 4xx with an E_ code', async ({ assert, client }) => {
    const admin = await createToken(['rotation:admin', 'rotation:read'])
    const signer = await createToken(['approvals:sign'])
    const cases: Array<[Promise<any>, number, string]> = [
      [client.get('/approvals/not-a-said').bearerToken(admin), 422, 'E_VALIDATION_ERROR'],
      [client.get(`/approvals/E${'A'.repeat(43)}`).bearerToken(admin), 404, 'E_APPROVAL_NOT_FOUND'],
      [
        client.post('/approvals').bearerToken(admin).json({ action: 'launch', kek: 'k' }),
        422,
        'E_VALIDATION_ERROR',
      ],
      [
        client
          .post('/approvals')
          .bearerToken(admin)
          .json({ action: 'retire', kek: 'k', params: { to: '2' } }),
        422,
        'E_GOVERNANCE_INPUT',
      ],
      [
        client.post('/approvals').bearerToken(admin).json({ action: 'reencrypt', kek: 'k' }),
        422,
        'E_GOVERNANCE_INPUT',
      ],
      [
        client
          .post(`/approvals/E${'A'.repeat(43)}/signatures`)
          .bearerToken(signer)
          .json({ signature: { i: 'x' } }),
        422,
        'E_VALIDATION_ERROR',
      ],
      [client.get('/approvals').qs({ state: 'all' }).bearerToken(admin), 422, 'E_VALIDATION_ERROR'],
    ]
    for (const [pending, status, code] of cases) {
      const response = await pending
      assert.equal(response.status(), status, JSON.stringify(response.body()))
      assert.equal(response.body().errors[0].code, code)
    }
  })
})

test.group('approvals CLI and secrets', (group) => {
  dualControlOn(group)
  group.each.setup(async () => {
    await clockAheadOfAuditTrail(clock)
    app.container.swap(Clock, () => clock)
    return () => app.container.restore(Clock)
  })

  test('approval:request → approval:sign (keystore) ×2 → status → kek:retire; no private key or passphrase server-side', async ({
    assert,
    client,
  }) => {
    const f = await fixture()
    const dir = await mkdtemp(join(tmpdir(), 'rewrap-approvals-'))
    const seeds: Uint8Array[] = []
    const keystores: string[] = []
    for (const [name, role] of [
      ['ada', 'cto'],
      ['bo', 'security_officer'],
    ] as const) {
      const keystore = join(dir, `${name}.keystore`)
      const init = ok(
        await ace('approver:init', ['--name', name, '--keystore', keystore, '--json'])
      )
      // The registry is governed (the fixture's approvers hold roles): a new AID needs approval.
      const refused = await ace('approver:register', [`${keystore}.icp.json`])
      assert.equal(refused.exitCode, 1)
      assert.match(refused.all.join('\n'), /E_APPROVAL_REQUIRED/)
      const admit = ok(
        await ace('approval:request', ['approver', '--param', `aid=${init.json.aid}`, '--json'])
      )
      await f.sign(admit.json.said, f.cto)
      await f.sign(admit.json.said, f.officer)
      ok(
        await ace('approver:register', [
          `${keystore}.icp.json`,
          '--approval',
          admit.json.said,
          '--json',
        ])
      )
      const secrets = decodeKeystore(await readFile(keystore, 'utf8'), PASSPHRASE)
      for (const seedBytes of [...secrets.current, ...secrets.next]) {
        seeds.push(seedBytes)
        rememberSecret(Buffer.from(seedBytes), 'approver seed')
      }
      await f.grant({ state: { aid: init.json.aid } } as TestAid, role)
      keystores.push(keystore)
    }
    const kek = kekName('cli')
    await createKek(kek)

    const requested = ok(
      await ace('approval:request', ['retire', '--kek', kek, '--expires-in', '2d', '--json'])
    )
    const said = requested.json.said
    const bad = await ace('approval:request', ['retire', '--kek', kek, '--param', 'to=2'])
    assert.equal(bad.exitCode, 1)
    assert.lengthOf(bad.all, 1)
    assert.match(bad.all[0], /E_GOVERNANCE_INPUT/)

    const first = ok(await ace('approval:sign', [said, '--keystore', keystores[0], '--json']))
    assert.deepEqual(first.json.missing, ['security_officer'])
    ok(await ace('approval:sign', [said, '--keystore', keystores[1]]))
    const status = ok(await ace('approval:status', [said, '--json']))
    assert.isTrue(status.json.approved)
    assert.deepEqual(status.json.missing, [])
    const human = ok(await ace('approval:status', [said]))
    assert.isTrue(human.all.some((line) => line.includes('Approved: yes')))

    // The act: refused without --approval (one E_ line, exit 1), runs with it.
    clock.offsetMs += 25 * 3_600_000
    const refused = await runAce('kek:retire', [kek])
    assert.equal(refused.exitCode, 1)
    assert.lengthOf(refused.all, 1)
    assert.match(refused.all[0], /E_APPROVAL_REQUIRED/)
    ok(await runAce('kek:retire', [kek, '--approval', said, '--json']))

    // No approver private key (raw seed in any encoding, qb64 signer) or passphrase server-side.
    const needles = [PASSPHRASE]
    for (const raw of seeds) {
      const bytes = Buffer.from(raw)
      needles.push(bytes.toString('hex'), bytes.toString('base64'), bytes.toString('base64url'))
      needles.push(new Signer({ raw, transferable: true }).qb64)
    }
    const { rows: tables } = await db.rawQuery(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`
    )
    let dump = ''
    for (const { table_name: table } of tables) {
      const { rows } = await db.rawQuery(`SELECT t::text AS row FROM "${table}" t`)
      dump += rows.map((r: { row: string }) => r.row).join('\n')
    }
    assert.include(dump, said, 'the dump holds the approval tables')
    const admin = await createToken(['rotation:read'])
    const response = await client.get(`/approvals/${said}`).bearerToken(admin)
    const logs = await readFile(process.env.LOG_FILE!, 'utf8').catch(() => '')
    const outputs = [requested, first, status, human].flatMap((r) => r.all).join('\n')
    for (const needle of needles) {
      assert.notInclude(dump, needle, 'a secret is in the database')
      assert.notInclude(JSON.stringify(response.body()), needle, 'a secret is in a response')
      assert.notInclude(logs, needle, 'a secret is in the log')
      assert.notInclude(outputs, needle, 'a secret is in the command output')
    }
  })

  test('every request and signature is recorded; approvals service lists by state', async ({
    assert,
  }) => {
    const f = await fixture()
    const kek = kekName('rec')
    const said = await f.approved('trim', kek)
    const { rows } = await db.rawQuery(
      `SELECT record FROM audit_events WHERE record LIKE ? ORDER BY seq`,
      [`%${said}%`]
    )
    const acts = rows.map((r: { record: string }) => JSON.parse(r.record).a)
    assert.deepEqual(
      acts.map((a: { act: string }) => a.act),
      ['approval.requested', 'approval.signed', 'approval.signed']
    )
    assert.deepEqual(acts[1].data.signature.i, f.cto.state.aid)
    const approvals = await app.container.make(ApprovalService)
    const pending = await approvals.list({ state: 'pending' })
    assert.include(
      pending.map((p) => p.said),
      said
    )
    const used = await approvals.list({ state: 'used' })
    assert.notInclude(
      used.map((p) => p.said),
      said
    )
  })
})
