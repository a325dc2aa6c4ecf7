import { test } from '@japa/runner'
import { ready, Saider } from 'signify-ts'
import {
  AUDIT_RECORD_SCHEMA_SAID,
  ROLE_CREDENTIAL_SCHEMA_SAID,
  SCHEMAS,
} from '#app/governance/schemas'
import {
  issueRoleCredential,
  revokeRoleCredential,
  verifyRevocation,
  verifyRoleCredential,
  type RoleCredential,
} from '#app/governance/credentials'
import { saidify, verifySaid } from '#app/governance/said'
import { makeAid, rotateAid } from '#tests/helpers/governance'

await ready()

const DT = '2026-01-02T03:04:05.000Z'

/*
| Pinned: the credential below (authority seed 0x0a/0x0b, subject seed
| 0x14/0x15, role cto, DT), its `a` block SAID and its SAID, as computed by
| signify-ts Saider.saidify (cross-checked in the test). A change to the
| credential layout or the schema breaks it on purpose. Computed first with
| signify-ts alone (incept + Saider.saidify over the same fields).
*/
const PINNED_A_SAID = 'EBWWEZMi9HGKdDzDhTtoxFZ7fb5xuRfxV6PKMIHypSfx'
const PINNED_SAID = 'ECoWAO0_1OKnTzu-YTVSmcCBMjdv66HXRHm0AD5bSJCH'

function authorityAndSubject() {
  return { authority: makeAid(10, 11), subject: makeAid(20, 21) }
}

test.group('governance / role credentials', () => {
  test('schema SAIDs are the committed files’ own $id (keripy Schemer / signify-ts)', ({
    assert,
  }) => {
    assert.sameMembers(Object.keys(SCHEMAS), [
      ROLE_CREDENTIAL_SCHEMA_SAID,
      AUDIT_RECORD_SCHEMA_SAID,
    ])
    for (const [said, value] of Object.entries(SCHEMAS)) {
      const schema = value as Record<string, unknown>
      assert.equal(schema.$id, said)
      assert.isTrue(verifySaid(schema, ['$id']))
      const [saider] = Saider.saidify(structuredClone(schema), 'E', 'JSON' as never, '$id')
      assert.equal(saider.qb64, said)
    }
    const role = SCHEMAS[ROLE_CREDENTIAL_SCHEMA_SAID] as Record<string, unknown>
    assert.isFalse(verifySaid({ ...role, title: 'Edited' }, ['$id']))
  })

  test('known answer: pinned credential SAIDs, equal to signify-ts Saider.saidify', ({
    assert,
  }) => {
    const { authority, subject } = authorityAndSubject()
    const { credential } = issueRoleCredential({
      issuer: authority.est,
      signers: authority.current,
      subject: subject.state.aid,
      role: 'cto',
      dt: DT,
    })
    assert.deepEqual(Object.keys(credential), ['v', 'd', 'i', 's', 'a'])
    assert.equal(credential.a.d, PINNED_A_SAID)
    assert.equal(credential.d, PINNED_SAID)
    const [aSaider] = Saider.saidify({ ...credential.a, d: '' })
    assert.equal(aSaider.qb64, PINNED_A_SAID)
    const [saider, sad] = Saider.saidify({ ...credential, d: '' })
    assert.equal(saider.qb64, PINNED_SAID)
    assert.equal(sad.v, credential.v)
  })

  test('a credential verifies, also after the authority rotates', ({ assert }) => {
    const { authority, subject } = authorityAndSubject()
    const signed = issueRoleCredential({
      issuer: authority.est,
      signers: authority.current,
      subject: subject.state.aid,
      role: 'security_officer',
      dt: DT,
    })
    assert.isTrue(verifyRoleCredential(signed, authority.state).ok)
    assert.isTrue(verifyRoleCredential(signed, rotateAid(authority, 12).state).ok)
  })

  test('tampered, re-SAIDed, forged, unknown-issuer and wrong-schema credentials fail', ({
    assert,
  }) => {
    const { authority, subject } = authorityAndSubject()
    const stranger = makeAid(50, 51)
    const signed = issueRoleCredential({
      issuer: authority.est,
      signers: authority.current,
      subject: subject.state.aid,
      role: 'cto',
      dt: DT,
    })
    const edit = (credential: RoleCredential) => ({ ...signed, credential })
    const promoted = {
      ...signed.credential,
      a: { ...signed.credential.a, role: 'security_officer' },
    }
    const code = (v: { ok: boolean; code?: string }) => (v.ok ? 'ok' : v.code)
    assert.equal(code(verifyRoleCredential(edit(promoted), authority.state)), 'E_SAID_INVALID')
    // The attacker recomputes both SAIDs: the issuer's signature no longer fits.
    const resaid = saidify({ ...promoted, a: saidify(promoted.a) })
    assert.equal(code(verifyRoleCredential(edit(resaid), authority.state)), 'E_SIGNATURE_INVALID')
    // A stranger signs a credential in the authority's name.
    const forged = issueRoleCredential({
      issuer: authority.est,
      signers: stranger.current,
      subject: stranger.state.aid,
      role: 'cto',
      dt: DT,
    })
    assert.equal(code(verifyRoleCredential(forged, authority.state)), 'E_SIGNATURE_INVALID')
    assert.equal(code(verifyRoleCredential(signed, undefined)), 'E_APPROVER_UNKNOWN')
    assert.equal(code(verifyRoleCredential(signed, stranger.state)), 'E_APPROVER_UNKNOWN')
    const otherSchema = saidify({ ...signed.credential, s: AUDIT_RECORD_SCHEMA_SAID })
    assert.equal(
      code(verifyRoleCredential(edit(otherSchema), authority.state)),
      'E_CREDENTIAL_INVALID'
    )
    const badRole = saidify({
      ...signed.credential,
      a: saidify({ ...signed.credential.a, role: 'CTO!' }),
    })
    assert.equal(code(verifyRoleCredential(edit(badRole), authority.state)), 'E_CREDENTIAL_INVALID')
    assert.equal(
      code(verifyRoleCredential({ ...signed, credential: null as never }, authority.state)),
      'E_CREDENTIAL_INVALID'
    )
  })

  test('revocations: signed by the issuer verify; others and tampered ones fail', ({ assert }) => {
    const { authority, subject } = authorityAndSubject()
    const stranger = makeAid(50, 51)
    const { credential } = issueRoleCredential({
      issuer: authority.est,
      signers: authority.current,
      subject: subject.state.aid,
      role: 'cto',
      dt: DT,
    })
    const rev = revokeRoleCredential({
      credential,
      issuer: authority.est,
      signers: authority.current,
      dt: DT,
    })
    assert.deepEqual(Object.keys(rev.revocation), ['v', 't', 'd', 'i', 's', 'ii', 'dt'])
    assert.equal(rev.revocation.i, credential.d)
    assert.isTrue(verifyRevocation(rev, authority.state).ok)
    const byStranger = revokeRoleCredential({
      credential,
      issuer: authority.est,
      signers: stranger.current,
      dt: DT,
    })
    assert.isFalse(verifyRevocation(byStranger, authority.state).ok)
    assert.isFalse(verifyRevocation(rev, stranger.state).ok)
    const retarget = { ...rev, revocation: { ...rev.revocation, i: stranger.state.aid } }
    assert.isFalse(verifyRevocation(retarget, authority.state).ok)
  })
})
