import { readFile } from 'node:fs/promises'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { ready } from 'signify-ts'
import { revokeRoleCredential, type SignedCredential } from '#app/governance/credentials'
import { ApproverService } from '#services/approver_service'
import { Clock } from '#services/clock'
import { CredentialService } from '#services/credential_service'
import { createToken } from '#tests/helpers/auth'
import { ShiftedClock } from '#tests/helpers/clock'
import { rejectsWith } from '#tests/helpers/errors'
import {
  assertAuditChainIntact,
  auditRecordsOf,
  clockAheadOfAuditTrail,
  dualControlOn,
  governanceFixture,
  newAid,
  type GovernanceFixture,
} from '#tests/helpers/governance_fixture'
import { waitFor } from '#tests/helpers/wait'

/*
| Changes to approvers and credentials are governed (docs/governance.md):
| once two approvers hold roles, registering an AID and registering or
| revoking a credential need an approval, consumed with the change and
| named by its audit record. Real Postgres, real signify-ts, the real
| services and routes.
*/

await ready()

const clock = new ShiftedClock()
let fx: GovernanceFixture
async function fixture() {
  fx ??= await governanceFixture()
  return fx
}

function withClock(group: { each: { setup(fn: () => unknown): void } }) {
  group.each.setup(async () => {
    await clockAheadOfAuditTrail(clock)
    app.container.swap(Clock, () => clock)
    return () => app.container.restore(Clock)
  })
}

async function approverRow(aid: string) {
  return db.from('approvers').where('aid', aid).first()
}

async function refusedFor(action: string, code: string) {
  const { rows } = await db.rawQuery(
    `SELECT record FROM audit_events
      WHERE (record::json -> 'a' ->> 'act') = 'approval.refused'
        AND (record::json -> 'a' -> 'data' ->> 'action') = ?
      ORDER BY seq DESC LIMIT 1`,
    [action]
  )
  const last = rows[0] ? JSON.parse(rows[0].record).a : undefined
  return last?.data.code === code ? last : undefined
}

/** A revocation of `credential` signed by the fixture's authority. */
function revocationOf(f: GovernanceFixture, credential: SignedCredential) {
  return revokeRoleCredential({
    credential: credential.credential,
    issuer: f.authority.est,
    signers: f.authority.current,
    dt: new Date().toISOString(),
  })
}

async function warned(action: string, param: string) {
  await waitFor(async () => {
    const log = await readFile(process.env.LOG_FILE!, 'utf8')
    return log
      .split('\n')
      .some(
        (line) =>
          line.includes('dual control is off') &&
          line.includes(`"act":"${action}"`) &&
          line.includes(param)
      )
  })
}

test.group('registry changes under dual control', (group) => {
  dualControlOn(group)
  withClock(group)

  test('a third approver: refused without an approval (E_APPROVAL_REQUIRED), by one signature, or for another AID; registered with two valid signatures', async ({
    assert,
  }) => {
    const f = await fixture()
    const approvers = await app.container.make(ApproverService)
    const carol = newAid()
    const aid = carol.state.aid
    const input = { name: 'carol', inception: carol.inception }

    await rejectsWith(approvers.register(input, { actor: 'eve' }), 'E_APPROVAL_REQUIRED')
    assert.isNull(await approverRow(aid), 'nothing stored')
    const refusal = await refusedFor('approver', 'E_APPROVAL_REQUIRED')
    assert.equal(refusal?.actor, 'eve')

    const half = await f.request('approver', '-', { aid })
    await f.sign(half, f.cto)
    await rejectsWith(approvers.register(input, { approval: half }), 'E_APPROVAL_INSUFFICIENT')
    const other = await f.approved('approver', '-', { aid: newAid().state.aid })
    await rejectsWith(approvers.register(input, { approval: other }), 'E_APPROVAL_MISMATCH')
    // An approval for an approver does not make it a role authority.
    const plain = await f.approved('approver', '-', { aid })
    await rejectsWith(
      approvers.register({ ...input, authority: true }, { approval: plain }),
      'E_APPROVAL_MISMATCH'
    )
    assert.isNull(await approverRow(aid), 'nothing stored')

    const registered = await approvers.register(input, { approval: plain, actor: 'ops' })
    assert.isTrue(registered.created)
    const records = await auditRecordsOf('approver.register', 'aid', aid)
    assert.lengthOf(records, 1)
    assert.equal(records[0].actor, 'ops')
    assert.equal(records[0].approvals?.request.d, plain)
    assert.sameMembers(
      records[0].approvals!.approvers.map((a) => a.aid),
      [f.cto.state.aid, f.officer.state.aid]
    )
    assert.notProperty(records[0].data, 'governance')
    // Used once: another AID cannot come in under it.
    const dave = newAid()
    await rejectsWith(
      approvers.register({ name: 'dave', inception: dave.inception }, { approval: plain }),
      'E_APPROVAL_USED'
    )
    // The holder's own rotation is not governed.
    const rotated = await f.rotate(carol)
    const state = await approvers.keyState(aid)
    assert.equal(state.sn, rotated.state.sn)
    assert.lengthOf(await auditRecordsOf('approver.rotate', 'aid', aid), 1)
    await assertAuditChainIntact(assert)
  })

  test('a credential over HTTP: registration and revocation refused without an approval, done with two valid signatures', async ({
    assert,
    client,
  }) => {
    const f = await fixture()
    const admin = await createToken(['governance:admin'], { name: 'registry-admin' })
    const erin = await f.approver('erin', [])
    const signed = await f.grant(erin, 'cto')
    const said = signed.credential.d

    // Revocation without an approval: refused, still valid.
    const revocation = revocationOf(f, signed)
    const refused = await client
      .post(`/credentials/${said}/revocation`)
      .bearerToken(admin)
      .json(revocation)
    refused.assertStatus(403)
    assert.equal(refused.body().errors[0].code, 'E_APPROVAL_REQUIRED')
    const row = await db.from('credentials').where('said', said).firstOrFail()
    assert.isNull(row.revoked_at)
    assert.lengthOf(await auditRecordsOf('credential.revoke', 'credential', said), 0)

    // An approval to register it does not revoke it.
    const wrong = await f.approved('credential', '-', { said })
    const mismatch = await client
      .post(`/credentials/${said}/revocation`)
      .bearerToken(admin)
      .json({ ...revocation, approval: wrong })
    mismatch.assertStatus(403)
    assert.equal(mismatch.body().errors[0].code, 'E_APPROVAL_MISMATCH')

    const approval = await f.approved('credential-revocation', '-', { said })
    const revoked = await client
      .post(`/credentials/${said}/revocation`)
      .bearerToken(admin)
      .json({ ...revocation, approval })
    revoked.assertStatus(200)
    assert.isTrue(revoked.body().revoked)
    const records = await auditRecordsOf('credential.revoke', 'credential', said)
    assert.lengthOf(records, 1)
    assert.equal(records[0].actor, 'registry-admin')
    assert.equal(records[0].approvals?.request.d, approval)

    // A new credential for erin: refused without an approval, registered with one.
    const fresh = await f.issue(erin, 'security_officer')
    const unapproved = await client.post('/credentials').bearerToken(admin).json(fresh)
    unapproved.assertStatus(403)
    assert.equal(unapproved.body().errors[0].code, 'E_APPROVAL_REQUIRED')
    assert.isNull(await db.from('credentials').where('said', fresh.credential.d).first())
    const grant = await f.approved('credential', '-', { said: fresh.credential.d })
    const created = await client
      .post('/credentials')
      .bearerToken(admin)
      .json({ ...fresh, approval: grant })
    created.assertStatus(201)
    const registration = await auditRecordsOf(
      'credential.register',
      'credential',
      fresh.credential.d
    )
    assert.equal(registration[0]?.approvals?.request.d, grant)
    await assertAuditChainIntact(assert)
  })
})

test.group('registry changes with dual control off', (group) => {
  withClock(group)

  test('registering an approver and revoking a credential pass without an approval, with the warning; the records say so', async ({
    assert,
  }) => {
    const f = await fixture()
    const approvers = await app.container.make(ApproverService)
    const credentials = await app.container.make(CredentialService)
    const frank = newAid()
    const aid = frank.state.aid
    const registered = await approvers.register({ name: 'frank', inception: frank.inception })
    assert.isTrue(registered.created)
    await warned('approver', aid)
    const [record] = await auditRecordsOf('approver.register', 'aid', aid)
    assert.isNull(record.approvals)
    assert.equal(record.data.governance, 'dual control off')

    const signed = await f.grant(f.cto, 'security_officer')
    const said = signed.credential.d
    const revoked = await credentials.revoke(revocationOf(f, signed))
    assert.isTrue(revoked.revoked)
    await warned('credential-revocation', said)
    const [revocation] = await auditRecordsOf('credential.revoke', 'credential', said)
    assert.equal(revocation.data.governance, 'dual control off')
    await assertAuditChainIntact(assert)
  })
})
