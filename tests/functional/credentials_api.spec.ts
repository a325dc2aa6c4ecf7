import { mkdtemp, readFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import env from '#start/env'
import { ready } from 'signify-ts'
import { encodeMessage } from '#app/governance/cesr_stream'
import {
  issueRoleCredential,
  revokeRoleCredential,
  type SignedCredential,
} from '#app/governance/credentials'
import type { RoleCheck, RoleVerdict, RoleVerifier } from '#app/governance/role_verifier'
import { ApproverService } from '#services/approver_service'
import { confirmApprovers, roleVerifier } from '#services/role_verifiers'
import StoredRoleVerifier from '#services/stored_role_verifier'
import { runAce } from '#tests/helpers/ace'
import { createToken } from '#tests/helpers/auth'
import { makeAid, rotateAid, type TestAid } from '#tests/helpers/governance'
import { assertAuditChainIntact, auditRecordsOf } from '#tests/helpers/governance_fixture'
import { rememberSecret } from '#tests/helpers/secrets'

/*
| Role credentials over HTTP (POST/GET /credentials, POST
| /credentials/:said/revocation, governance:admin) and the RoleVerifier:
| the built-in one over the registered credentials, and the config slot a
| vLEI verification service would take. Real Postgres, real signify-ts.
*/

await ready()

async function register(aid: TestAid, name: string, authority = false) {
  const approvers = await app.container.make(ApproverService)
  return approvers.register({ name, inception: encodeMessage(aid.kel[0]), authority })
}

function issue(authority: TestAid, subject: TestAid, role: string, dt = new Date()) {
  return issueRoleCredential({
    issuer: authority.est,
    signers: authority.current,
    subject: subject.state.aid,
    role,
    dt: dt.toISOString(),
  })
}

function revoke(authority: TestAid, signed: SignedCredential, dt = new Date()) {
  return revokeRoleCredential({
    credential: signed.credential,
    issuer: authority.est,
    signers: authority.current,
    dt: dt.toISOString(),
  })
}

const code = (response: { body(): any }) => response.body().errors?.[0]?.code

test.group('POST/GET /credentials, POST /credentials/:said/revocation', (group) => {
  let admin: string
  let rotationAdmin: string
  const authority = makeAid(0xd1, 0xd2)
  const peer = makeAid(0xd3, 0xd4)
  const subject = makeAid(0xd5, 0xd6)
  group.setup(async () => {
    admin = await createToken(['governance:admin'], { name: 'registry-admin' })
    rotationAdmin = await createToken(['rotation:admin', 'rotation:read'])
    await register(authority, 'authority-api', true)
    await register(peer, 'peer-api')
    await register(subject, 'subject-api')
  })

  test('register (201, then 200), list, show, revoke; governance:admin only', async ({
    client,
    assert,
  }) => {
    const signed = issue(authority, subject, 'cto')
    const said = signed.credential.d

    const anonymous = await client.post('/credentials').json(signed)
    anonymous.assertStatus(401)
    const refused = await client.post('/credentials').bearerToken(rotationAdmin).json(signed)
    refused.assertStatus(403)
    assert.equal(code(refused), 'E_FORBIDDEN')
    assert.isNull(await db.from('credentials').where('said', said).first())

    const created = await client.post('/credentials').bearerToken(admin).json(signed)
    created.assertStatus(201)
    assert.include(created.body(), {
      said,
      issuer: authority.state.aid,
      subject: subject.state.aid,
      role: 'cto',
      revokedAt: null,
      created: true,
    })
    assert.deepEqual(created.body().verification, {
      by: 'builtin',
      gleifAnchored: false,
      valid: true,
    })
    const again = await client.post('/credentials').bearerToken(admin).json(signed)
    again.assertStatus(200)
    assert.isFalse(again.body().created)

    const list = await client
      .get('/credentials')
      .qs({ subject: subject.state.aid })
      .bearerToken(admin)
    list.assertStatus(200)
    assert.deepEqual(
      list.body().data.map((c: { said: string }) => c.said),
      [said]
    )
    const listRefused = await client.get('/credentials').bearerToken(rotationAdmin)
    listRefused.assertStatus(403)

    const shown = await client.get(`/credentials/${said}`).bearerToken(admin)
    shown.assertStatus(200)
    assert.deepEqual(shown.body().credential, signed.credential)
    assert.deepEqual(shown.body().signature, signed.signature)
    assert.isNull(shown.body().revocation)

    // The revocation, signed by the issuer; the path names the credential it revokes.
    const revocation = revoke(authority, signed)
    const other = issue(authority, subject, 'security_officer')
    const wrongPath = await client
      .post(`/credentials/${other.credential.d}/revocation`)
      .bearerToken(admin)
      .json(revocation)
    wrongPath.assertStatus(422)
    assert.equal(code(wrongPath), 'E_GOVERNANCE_INPUT')
    const byPeer = await client
      .post(`/credentials/${said}/revocation`)
      .bearerToken(admin)
      .json(
        revokeRoleCredential({
          credential: signed.credential,
          issuer: peer.est,
          signers: peer.current,
          dt: new Date().toISOString(),
        })
      )
    byPeer.assertStatus(403)
    assert.equal(code(byPeer), 'E_SIGNATURE_INVALID')
    const revokeRefused = await client
      .post(`/credentials/${said}/revocation`)
      .bearerToken(rotationAdmin)
      .json(revocation)
    revokeRefused.assertStatus(403)

    const revoked = await client
      .post(`/credentials/${said}/revocation`)
      .bearerToken(admin)
      .json(revocation)
    revoked.assertStatus(200)
    assert.isTrue(revoked.body().revoked)
    assert.isString(revoked.body().revokedAt)
    assert.include(revoked.body().verification, { valid: false, code: 'E_CREDENTIAL_REVOKED' })
    const replay = await client
      .post(`/credentials/${said}/revocation`)
      .bearerToken(admin)
      .json(revocation)
    replay.assertStatus(200)
    assert.isFalse(replay.body().revoked)
    const shownRevoked = await client.get(`/credentials/${said}`).bearerToken(admin)
    assert.deepEqual(shownRevoked.body().revocation, revocation)
    const reRegister = await client.post('/credentials').bearerToken(admin).json(signed)
    reRegister.assertStatus(403)
    assert.equal(code(reRegister), 'E_CREDENTIAL_REVOKED')

    // One record per change (refusals and no-ops change nothing), by the token's name,
    // naming the SAIDs; the chain verifies and exports.
    const registrations = await auditRecordsOf('credential.register', 'credential', said)
    assert.lengthOf(registrations, 1)
    assert.include(registrations[0], { actor: 'registry-admin', outcome: 'done' })
    assert.include(registrations[0].data, {
      issuer: authority.state.aid,
      subject: subject.state.aid,
      role: 'cto',
    })
    const revocations = await auditRecordsOf('credential.revoke', 'credential', said)
    assert.lengthOf(revocations, 1)
    assert.include(revocations[0], { actor: 'registry-admin', outcome: 'done' })
    assert.include(revocations[0].data, { revocation: revocation.revocation.d })
    await assertAuditChainIntact(assert)
  })

  test('bad input: 4xx with an E_ code, nothing stored', async ({ client, assert }) => {
    const empty = await client.post('/credentials').bearerToken(admin).json({})
    empty.assertStatus(422)
    assert.equal(code(empty), 'E_VALIDATION_ERROR')

    const signed = issue(authority, subject, 'security_officer')
    const tampered = {
      ...signed,
      credential: { ...signed.credential, a: { ...signed.credential.a, role: 'cto' } },
    }
    const edited = await client.post('/credentials').bearerToken(admin).json(tampered)
    edited.assertStatus(422)
    assert.equal(code(edited), 'E_SAID_INVALID')

    const janitor = await client
      .post('/credentials')
      .bearerToken(admin)
      .json(issue(authority, subject, 'janitor'))
    janitor.assertStatus(422)
    assert.equal(code(janitor), 'E_ROLE_UNKNOWN')

    const byPeer = await client
      .post('/credentials')
      .bearerToken(admin)
      .json(issue(peer, subject, 'cto'))
    byPeer.assertStatus(403)
    assert.equal(code(byPeer), 'E_APPROVER_NOT_AUTHORITY')

    const unknown = await client.get(`/credentials/E${'A'.repeat(43)}`).bearerToken(admin)
    unknown.assertStatus(404)
    assert.equal(code(unknown), 'E_CREDENTIAL_NOT_FOUND')
    const malformed = await client.get('/credentials/not-a-said').bearerToken(admin)
    malformed.assertStatus(404)
    const badSubject = await client.get('/credentials').qs({ subject: 'x' }).bearerToken(admin)
    badSubject.assertStatus(422)
    assert.equal(code(badSubject), 'E_VALIDATION_ERROR')

    const notJson = await client
      .post('/credentials')
      .bearerToken(admin)
      .header('content-type', 'text/plain')
      .form({ credential: 'x' })
    assert.include([415, 422], notJson.status())

    const count = await db
      .from('credentials')
      .where('subject', subject.state.aid)
      .where('role', 'security_officer')
      .count('* as n')
      .first()
    assert.equal(Number(count.n), 0)
  })

  test('credential:revoke --out writes the signed revocation; POST /credentials/:said/revocation records it', async ({
    client,
    assert,
  }) => {
    const dir = await mkdtemp(join(tmpdir(), 'rewrap-cred-api-'))
    const passphrase = `api ${randomBytes(6).toString('hex')}`
    rememberSecret(passphrase, 'keystore passphrase')
    const previous = env.get('REWRAP_KEYSTORE_PASSPHRASE')
    env.set('REWRAP_KEYSTORE_PASSPHRASE', passphrase)
    try {
      const keystore = join(dir, 'authority.keystore')
      await runAce('approver:init', ['--name', 'cli-authority', '--keystore', keystore])
      await runAce('approver:register', [`${keystore}.icp.json`, '--authority'])
      const holder = makeAid(0xd7, 0xd8)
      await register(holder, 'holder-api')
      const file = join(dir, 'holder-cto.json')
      const issued = await runAce('credential:issue', [
        '--keystore',
        keystore,
        '--subject',
        holder.state.aid,
        '--role',
        'cto',
        '--out',
        file,
        '--json',
      ])
      assert.equal(issued.exitCode, 0, issued.all.join('\n'))
      const body = JSON.parse(await readFile(file, 'utf8'))
      const posted = await client.post('/credentials').bearerToken(admin).json(body)
      posted.assertStatus(201)

      const out = join(dir, 'holder-cto.revocation.json')
      const written = await runAce('credential:revoke', [
        issued.json.said,
        '--keystore',
        keystore,
        '--out',
        out,
        '--json',
      ])
      assert.equal(written.exitCode, 0, written.all.join('\n'))
      assert.equal(written.json.said, issued.json.said)
      const row = await db.from('credentials').where('said', issued.json.said).firstOrFail()
      assert.isNull(row.revoked_at, '--out only writes the file')
      const revoked = await client
        .post(`/credentials/${issued.json.said}/revocation`)
        .bearerToken(admin)
        .json(JSON.parse(await readFile(out, 'utf8')))
      revoked.assertStatus(200)
      assert.isTrue(revoked.body().revoked)
    } finally {
      env.set('REWRAP_KEYSTORE_PASSPHRASE', previous as any)
      if (previous === undefined) delete process.env.REWRAP_KEYSTORE_PASSPHRASE
    }
  })
})

test.group('RoleVerifier', (group) => {
  const authority = makeAid(0xe1, 0xe2)
  const alice = makeAid(0xe3, 0xe4)
  const bob = makeAid(0xe5, 0xe6)
  group.setup(async () => {
    await register(authority, 'authority-rv', true)
    await register(alice, 'alice-rv')
    await register(bob, 'bob-rv')
  })

  test('built-in: valid, unrevoked, for that subject and role, at that time', async ({
    assert,
  }) => {
    const verifier = await app.container.make(StoredRoleVerifier)
    const issuedAt = new Date(Date.now() - 60_000)
    const signed = issue(authority, alice, 'cto', issuedAt)
    const approvers = await app.container.make(ApproverService)
    const { CredentialService } = await import('#services/credential_service')
    const credentials = await app.container.make(CredentialService)
    await credentials.register(signed)
    const said = signed.credential.d
    const check = (over: Partial<RoleCheck> = {}): Promise<RoleVerdict> =>
      verifier.verify({
        subject: alice.state.aid,
        role: 'cto',
        credential: said,
        at: new Date(),
        ...over,
      })

    assert.deepEqual(await check(), { ok: true, credential: said, issuer: authority.state.aid })
    assert.include(await check({ role: 'security_officer' }), { code: 'E_CREDENTIAL_INVALID' })
    assert.include(await check({ subject: bob.state.aid }), { code: 'E_CREDENTIAL_INVALID' })
    assert.include(await check({ credential: `E${'B'.repeat(43)}` }), {
      code: 'E_CREDENTIAL_INVALID',
    })
    assert.include(await check({ at: new Date(issuedAt.getTime() - 1000) }), {
      code: 'E_CREDENTIAL_INVALID',
    })

    // The authority rotates: the credential it issued before stays valid.
    const rotated = rotateAid(authority, 0xe7)
    await approvers.rotate(encodeMessage(rotated.kel[1]))
    assert.include(await check(), { ok: true })

    // Revoked: refused from the revocation on, still valid for a time before it.
    const before = new Date()
    await credentials.revoke(revoke(rotated, signed))
    assert.include(await check(), { ok: false, code: 'E_CREDENTIAL_REVOKED' })
    assert.include(await check({ at: new Date(before.getTime() - 1000) }), { ok: true })

    assert.include(
      await confirmApprovers([{ aid: alice.state.aid, role: 'cto', credential: said }], new Date()),
      {
        ok: false,
        code: 'E_CREDENTIAL_REVOKED',
      }
    )
  })

  test('the config slot: another verifier answers every role check (status, credentials, approvers)', async ({
    assert,
    client,
  }) => {
    const asked: RoleCheck[] = []
    class VleiStandIn implements RoleVerifier {
      readonly name = 'vlei-stand-in'
      readonly gleifAnchored = true
      async verify(check: RoleCheck): Promise<RoleVerdict> {
        asked.push(check)
        return { ok: false, code: 'E_CREDENTIAL_INVALID', reason: 'not chained to GLEIF' }
      }
    }
    const initial = app.config.get('governance.roleVerifier')
    app.config.set('governance.roleVerifier', async () => ({ default: VleiStandIn }))
    try {
      const other = makeAid(0xe9, 0xea)
      await register(other, 'authority-rv2', true)
      const signed = issue(other, bob, 'security_officer')
      const { CredentialService } = await import('#services/credential_service')
      const credentials = await app.container.make(CredentialService)
      const registered = await credentials.register(signed)
      assert.deepEqual(registered.verification, {
        by: 'vlei-stand-in',
        gleifAnchored: true,
        valid: false,
        code: 'E_CREDENTIAL_INVALID',
        reason: 'not chained to GLEIF',
      })
      assert.include(asked.at(-1)!, {
        subject: bob.state.aid,
        role: 'security_officer',
        credential: signed.credential.d,
      })
      const verdict = await confirmApprovers(
        [{ aid: bob.state.aid, role: 'security_officer', credential: signed.credential.d }],
        new Date()
      )
      assert.include(verdict, { ok: false, code: 'E_CREDENTIAL_INVALID' })

      const read = await createToken(['rotation:read'])
      const status = await client.get('/rotations/status').bearerToken(read)
      assert.deepEqual(status.body().governance.roleVerifier, {
        name: 'vlei-stand-in',
        gleifAnchored: true,
      })
    } finally {
      app.config.set('governance.roleVerifier', initial)
    }
    const builtin = await roleVerifier()
    assert.equal(builtin.name, 'builtin')
    assert.isFalse(builtin.gleifAnchored)
  })
})
