import { test } from '@japa/runner'
import { ready } from 'signify-ts'
import {
  createApprovalRequest,
  signApproval,
  verifyApprovalRequest,
  type ApprovalRequest,
} from '#app/governance/approval_request'
import { evaluateApproval, matchRoles, type ApprovalInput } from '#app/governance/approvals'
import { issueRoleCredential, revokeRoleCredential } from '#app/governance/credentials'
import { governanceError } from '#app/governance/errors'
import { saidify } from '#app/governance/said'
import type { SignatureGroup } from '#app/governance/signatures'
import { makeAid, rotateAid, type TestAid } from '#tests/helpers/governance'

await ready()

const NOW = new Date('2026-03-01T12:00:00.000Z')
const HOUR = 3_600_000
const ROLES = ['cto', 'security_officer']

/** Counting bytes, so nonces differ and are reproducible. */
function counter() {
  let next = 0
  return (n: number) => new Uint8Array(n).map(() => next++ & 0xff)
}

/** An authority, approvers with credentials, and a rotate request. */
function world() {
  const authority = makeAid(10, 11)
  const cto = makeAid(20, 21)
  const officer = makeAid(30, 31)
  const cto2 = makeAid(40, 41)
  const stranger = makeAid(50, 51)
  const both = makeAid(60, 61)
  const issue = (subject: TestAid, role: string, issuer = authority) =>
    issueRoleCredential({
      issuer: issuer.est,
      signers: issuer.current,
      subject: subject.state.aid,
      role,
      dt: '2026-01-01T00:00:00.000Z',
    })
  const credentials = [
    issue(cto, 'cto'),
    issue(officer, 'security_officer'),
    issue(cto2, 'cto'),
    issue(both, 'cto'),
    issue(both, 'security_officer'),
    issue(stranger, 'security_officer', stranger), // self-issued: not an authority
  ]
  const request = createApprovalRequest({
    action: 'rotate',
    kek: 'orders',
    params: { target_version: '3' },
    requester: 'ops-token',
    now: NOW,
    ttlMs: 24 * HOUR,
    random: counter(),
  })
  const all = [authority, cto, officer, cto2, stranger, both]
  const input = (
    signatures: SignatureGroup[],
    over: Partial<ApprovalInput> = {}
  ): ApprovalInput => ({
    request,
    signatures,
    keyStates: new Map(all.map((aid) => [aid.state.aid, aid.state])),
    credentials,
    revocations: [],
    authorities: [authority.state.aid],
    requiredRoles: ROLES,
    now: new Date(NOW.getTime() + HOUR),
    action: 'rotate',
    kek: 'orders',
    params: { target_version: '3' },
    ...over,
  })
  const sign = (aid: TestAid, req: ApprovalRequest = request) =>
    signApproval(req, aid.current, aid.est)
  return { authority, cto, officer, cto2, stranger, both, credentials, request, input, sign }
}

function codeOf(verdict: { ok: boolean; code?: string }) {
  return verdict.ok ? 'ok' : verdict.code
}

test.group('governance / approval requests', () => {
  test('a request is SAID-addressed, params sorted, nonce from the injected randomness', ({
    assert,
  }) => {
    const request = createApprovalRequest({
      action: 'rotate',
      kek: 'orders',
      params: { to: 'b', from: 'a' },
      requester: 'ops',
      now: NOW,
      ttlMs: HOUR,
      random: () => new Uint8Array(16).fill(1),
    })
    assert.deepEqual(Object.keys(request.params), ['from', 'to'])
    assert.equal(request.created, '2026-03-01T12:00:00.000Z')
    assert.equal(request.expires, '2026-03-01T13:00:00.000Z')
    assert.equal(request.nonce, 'AQEBAQEBAQEBAQEBAQEBAQ')
    assert.isTrue(verifyApprovalRequest(request).ok)
    assert.equal(codeOf(verifyApprovalRequest({ ...request, kek: 'other' })), 'E_APPROVAL_MISMATCH')
    assert.throws(() =>
      createApprovalRequest({
        ...request,
        params: { '1': 'x' },
        now: NOW,
        ttlMs: 1,
        random: counter(),
      })
    )
  })
})

test.group('governance / evaluateApproval', () => {
  test('two distinct AIDs holding cto and security_officer approve', ({ assert }) => {
    const w = world()
    const verdict = evaluateApproval(w.input([w.sign(w.cto), w.sign(w.officer)]))
    assert.isTrue(verdict.ok, verdict.ok ? '' : verdict.reason)
    if (!verdict.ok) return
    assert.deepEqual(verdict.approvers, [
      { aid: w.cto.state.aid, role: 'cto', credential: w.credentials[0].credential.d },
      {
        aid: w.officer.state.aid,
        role: 'security_officer',
        credential: w.credentials[1].credential.d,
      },
    ])
  })

  test('no, one, or two same-role approvals are insufficient and name the missing roles', ({
    assert,
  }) => {
    const w = world()
    const none = evaluateApproval(w.input([]))
    assert.equal(codeOf(none), 'E_APPROVAL_INSUFFICIENT')
    assert.deepEqual(none.ok ? [] : none.missing, ROLES)
    const one = evaluateApproval(w.input([w.sign(w.cto)]))
    assert.deepEqual(one.ok ? [] : [one.code, one.missing], [
      'E_APPROVAL_INSUFFICIENT',
      ['security_officer'],
    ])
    const sameRole = evaluateApproval(w.input([w.sign(w.cto), w.sign(w.cto2)]))
    assert.deepEqual(sameRole.ok ? [] : sameRole.missing, ['security_officer'])
    if (!sameRole.ok) assert.include(sameRole.reason, 'security_officer')
  })

  test('one AID cannot fill two roles; the same AID twice is E_SAME_APPROVER', ({ assert }) => {
    const w = world()
    const alone = evaluateApproval(w.input([w.sign(w.both)]))
    assert.equal(codeOf(alone), 'E_APPROVAL_INSUFFICIENT')
    assert.lengthOf(alone.ok ? [] : alone.missing!, 1)
    assert.equal(
      codeOf(evaluateApproval(w.input([w.sign(w.cto), w.sign(w.cto)]))),
      'E_SAME_APPROVER'
    )
    // `both` holds both roles and fills whichever the other approver leaves.
    const withCto = evaluateApproval(w.input([w.sign(w.both), w.sign(w.cto)]))
    assert.isTrue(withCto.ok)
    if (withCto.ok) {
      assert.deepEqual(
        withCto.approvers.map((a) => [a.role, a.aid]),
        [
          ['cto', w.cto.state.aid],
          ['security_officer', w.both.state.aid],
        ]
      )
    }
  })

  test('role matching finds an assignment where greedy choice would not', ({ assert }) => {
    const held = new Map([
      [
        'a',
        new Map([
          ['cto', 'c1'],
          ['security_officer', 'c2'],
        ]),
      ],
      ['b', new Map([['cto', 'c3']])],
    ])
    assert.deepEqual(matchRoles(['cto', 'security_officer'], held), ['b', 'a'])
    assert.deepEqual(matchRoles(['cto', 'cto'], held), ['b', 'a'])
    assert.deepEqual(matchRoles(['cto', 'cto', 'cto'], held), ['b', 'a', undefined])
  })

  test('a revoked credential is E_CREDENTIAL_REVOKED', ({ assert }) => {
    const w = world()
    const revocation = revokeRoleCredential({
      credential: w.credentials[1].credential,
      issuer: w.authority.est,
      signers: w.authority.current,
      dt: '2026-02-01T00:00:00.000Z',
    })
    const verdict = evaluateApproval(
      w.input([w.sign(w.cto), w.sign(w.officer)], { revocations: [revocation] })
    )
    assert.equal(codeOf(verdict), 'E_CREDENTIAL_REVOKED')
    // A revocation signed by someone else than the issuer changes nothing.
    const forged = revokeRoleCredential({
      credential: w.credentials[1].credential,
      issuer: w.authority.est,
      signers: w.stranger.current,
      dt: '2026-02-01T00:00:00.000Z',
    })
    assert.isTrue(
      evaluateApproval(w.input([w.sign(w.cto), w.sign(w.officer)], { revocations: [forged] })).ok
    )
  })

  test('expired, not yet valid, and mismatched requests are refused', ({ assert }) => {
    const w = world()
    const sigs = [w.sign(w.cto), w.sign(w.officer)]
    const at = (ms: number) => ({ now: new Date(ms) })
    assert.equal(
      codeOf(evaluateApproval(w.input(sigs, at(Date.parse(w.request.expires))))),
      'E_APPROVAL_EXPIRED'
    )
    assert.isTrue(evaluateApproval(w.input(sigs, at(Date.parse(w.request.expires) - 1))).ok)
    assert.equal(
      codeOf(evaluateApproval(w.input(sigs, at(NOW.getTime() - 1)))),
      'E_APPROVAL_MISMATCH'
    )
    const mismatches: Array<Partial<ApprovalInput>> = [
      { action: 'trim' },
      { kek: 'payments' },
      { params: { target_version: '4' } },
      { params: { target_version: '3', batch: '10' } },
      { params: {} },
    ]
    for (const over of mismatches) {
      assert.equal(
        codeOf(evaluateApproval(w.input(sigs, over))),
        'E_APPROVAL_MISMATCH',
        JSON.stringify(over)
      )
    }
    // The request edited after signing (same SAID claimed).
    const edited = { ...w.request, kek: 'payments' }
    assert.equal(
      codeOf(evaluateApproval(w.input(sigs, { request: edited, kek: 'payments' }))),
      'E_APPROVAL_MISMATCH'
    )
  })

  test('unknown signer, bad signatures and rotated-out keys are refused', ({ assert }) => {
    const w = world()
    const outsider = makeAid(70, 71)
    assert.equal(
      codeOf(evaluateApproval(w.input([w.sign(w.cto), w.sign(outsider)]))),
      'E_APPROVER_UNKNOWN'
    )
    // A signature over another request, presented for this one.
    const other = saidify({ ...w.request, kek: 'payments' }) as ApprovalRequest
    assert.equal(
      codeOf(evaluateApproval(w.input([w.sign(w.cto), w.sign(w.officer, other)]))),
      'E_SIGNATURE_INVALID'
    )
    // The officer signs with a stranger's key under its own name.
    const impostor = signApproval(w.request, w.stranger.current, w.officer.est)
    assert.equal(
      codeOf(evaluateApproval(w.input([w.sign(w.cto), impostor]))),
      'E_SIGNATURE_INVALID'
    )
    // The officer rotated: the old key no longer counts, the new one does.
    const rotated = rotateAid(w.officer, 32)
    const keyStates = new Map(w.input([]).keyStates).set(rotated.state.aid, rotated.state)
    const old = evaluateApproval(w.input([w.sign(w.cto), w.sign(w.officer)], { keyStates }))
    assert.equal(codeOf(old), 'E_SIGNATURE_INVALID')
    assert.isTrue(evaluateApproval(w.input([w.sign(w.cto), w.sign(rotated)], { keyStates })).ok)
    // Old keys presented as if they were the current establishment event.
    const lying = signApproval(w.request, w.officer.current, rotated.est)
    assert.equal(
      codeOf(evaluateApproval(w.input([w.sign(w.cto), lying], { keyStates }))),
      'E_SIGNATURE_INVALID'
    )
  })

  test('credentials from non-authorities or for unconfigured roles do not count', ({ assert }) => {
    const w = world()
    // stranger's security_officer credential is self-issued.
    const verdict = evaluateApproval(w.input([w.sign(w.cto), w.sign(w.stranger)]))
    assert.deepEqual(verdict.ok ? [] : [verdict.code, verdict.missing], [
      'E_APPROVAL_INSUFFICIENT',
      ['security_officer'],
    ])
    // Trusting another authority makes the authority's credentials worthless.
    const elsewhere = evaluateApproval(
      w.input([w.sign(w.cto), w.sign(w.officer)], { authorities: [w.stranger.state.aid] })
    )
    assert.equal(codeOf(elsewhere), 'E_APPROVAL_INSUFFICIENT')
    assert.equal(
      codeOf(evaluateApproval(w.input([w.sign(w.cto)], { requiredRoles: [] }))),
      'E_APPROVAL_INSUFFICIENT'
    )
    assert.isTrue(evaluateApproval(w.input([w.sign(w.cto)], { requiredRoles: ['cto'] })).ok)
  })
})

test.group('governance / verdicts to exceptions', () => {
  test('a failed verdict becomes the E_ exception of the same code, with its status', ({
    assert,
  }) => {
    const w = world()
    const verdict = evaluateApproval(w.input([w.sign(w.cto)]))
    assert.isFalse(verdict.ok)
    if (verdict.ok) return
    const error = governanceError(verdict) as Error & { code: string; status: number }
    assert.equal(error.code, 'E_APPROVAL_INSUFFICIENT')
    assert.equal(error.status, 403)
    assert.equal(error.message, 'Approval insufficient: missing role(s): security_officer')
  })
})
