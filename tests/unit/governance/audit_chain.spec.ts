import { test } from '@japa/runner'
import { ready } from 'signify-ts'
import { createApprovalRequest, signApproval } from '#app/governance/approval_request'
import { evaluateApproval } from '#app/governance/approvals'
import {
  createAuditRecord,
  type AuditApprovals,
  type SignedAuditRecord,
} from '#app/governance/audit_record'
import { verifyAuditChain } from '#app/governance/audit_chain'
import { issueRoleCredential } from '#app/governance/credentials'
import { saidify, serialize } from '#app/governance/said'
import { signGroup } from '#app/governance/signatures'
import { makeAid, rotateAid, type TestAid } from '#tests/helpers/governance'

await ready()

const T0 = Date.parse('2026-03-01T12:00:00.000Z')
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString()

/** A fresh chain of `steps` (service key, act, approvals, data, outcome), five minutes apart. */
function chainOf(
  steps: Array<[TestAid, string, AuditApprovals | null, Record<string, unknown>, string?]>
): SignedAuditRecord[] {
  const records: SignedAuditRecord[] = []
  steps.forEach(([service, act, approvals, data, outcome], n) => {
    records.push(
      createAuditRecord({
        service: service.est,
        signers: service.current,
        previous: records[n - 1]?.record,
        act,
        actor: approvals ? 'ops' : 'service',
        approvals,
        outcome: outcome ?? 'done',
        dt: at(n * 5),
        data,
      })
    )
  })
  return records
}

/** A five-record chain; the service rotates its key between records 2 and 3. */
function chain() {
  const authority = makeAid(10, 11)
  const cto = makeAid(20, 21)
  const officer = makeAid(30, 31)
  const stranger = makeAid(50, 51)
  const service0 = makeAid(80, 81)
  const service1 = rotateAid(service0, 82)
  const credentials = [
    issueRoleCredential({
      issuer: authority.est,
      signers: authority.current,
      subject: cto.state.aid,
      role: 'cto',
      dt: at(-60),
    }),
    issueRoleCredential({
      issuer: authority.est,
      signers: authority.current,
      subject: officer.state.aid,
      role: 'security_officer',
      dt: at(-60),
    }),
  ]
  const request = createApprovalRequest({
    action: 'rotate',
    kek: 'orders',
    params: {},
    requester: 'ops',
    now: new Date(at(0)),
    ttlMs: 3_600_000,
    random: () => new Uint8Array(16).fill(7),
  })
  const signatures = [
    signApproval(request, cto.current, cto.est),
    signApproval(request, officer.current, officer.est),
  ]
  const keyStates = new Map([authority, cto, officer, service1].map((a) => [a.state.aid, a.state]))
  const evaluated = evaluateApproval({
    request,
    signatures,
    keyStates,
    credentials,
    revocations: [],
    authorities: [authority.state.aid],
    requiredRoles: ['cto', 'security_officer'],
    now: new Date(at(10)),
    action: 'rotate',
    kek: 'orders',
    params: {},
  })
  if (!evaluated.ok) throw new Error(evaluated.reason)
  const approvals: AuditApprovals = { request, signatures, approvers: evaluated.approvers }
  const steps: Array<[TestAid, string, AuditApprovals | null, string]> = [
    [service0, 'service.started', null, 'changed'],
    [service0, 'rotation.requested', null, 'requested'],
    [service0, 'rotation.approved', approvals, 'approved'],
    [service1, 'rotation.executed', approvals, 'started'],
    [service1, 'rotation.finished', null, 'finished'],
  ]
  const records = chainOf(
    steps.map(([service, act, appr, outcome]) => [
      service,
      act,
      appr,
      { kek: 'orders', version: 2 },
      outcome,
    ])
  )
  const keyEventLogs = Object.fromEntries(
    [authority, cto, officer, service1].map((a) => [a.state.aid, a.kel])
  )
  const options = { authorities: [authority.state.aid] }
  const verify = (recs: SignedAuditRecord[]) =>
    verifyAuditChain(recs, keyEventLogs, credentials, options)
  return {
    records,
    verify,
    service0,
    service1,
    stranger,
    keyEventLogs,
    credentials,
    options,
    approvals,
  }
}

/** Edits a record's attributes, recomputes both SAIDs, keeps the old signature. */
function edit(entry: SignedAuditRecord, change: Record<string, unknown>): SignedAuditRecord {
  const a = saidify({ ...entry.record.a, ...change })
  return { record: saidify({ ...entry.record, a }), signature: entry.signature }
}

/** Re-signs a record with `signer` under `est`. */
function resign(entry: SignedAuditRecord, who: TestAid, est = who.est): SignedAuditRecord {
  return {
    record: entry.record,
    signature: signGroup(serialize(entry.record).raw, who.current, est),
  }
}

function brokenAt(verdict: ReturnType<ReturnType<typeof chain>['verify']>) {
  return verdict.ok ? 'ok' : `${verdict.index}:${verdict.cause}`
}

test.group('governance / audit chain', () => {
  test('a good chain verifies across a service key rotation', ({ assert }) => {
    const c = chain()
    const verdict = c.verify(c.records)
    assert.deepEqual(verdict, {
      ok: true,
      count: 5,
      head: c.records[4].record.d,
      serviceAid: c.service0.state.aid,
    })
    assert.equal(c.records[3].signature.s, '1', 'record 3 signed under the rotation')
    assert.deepEqual(c.verify([]), { ok: true, count: 0, head: '', serviceAid: undefined })
  })

  test('editing a record is detected, naming the record', ({ assert }) => {
    const c = chain()
    const recs = [...c.records]
    recs[2] = {
      ...recs[2],
      record: { ...recs[2].record, a: { ...recs[2].record.a, outcome: 'refused' } },
    }
    const verdict = c.verify(recs)
    assert.equal(brokenAt(verdict), '2:E_SAID_INVALID')
    if (!verdict.ok) assert.equal(verdict.said, c.records[2].record.d)
    // Edited with fresh SAIDs: the service's signature no longer fits.
    const resaid = [...c.records]
    resaid[1] = edit(resaid[1], { actor: 'someone-else' })
    assert.equal(brokenAt(c.verify(resaid)), '1:E_SIGNATURE_INVALID')
  })

  test('deleting or reordering records is detected', ({ assert }) => {
    const c = chain()
    const deleted = [...c.records.slice(0, 2), ...c.records.slice(3)]
    assert.equal(brokenAt(c.verify(deleted)), '2:E_SAID_INVALID')
    const first = c.verify(c.records.slice(1))
    assert.equal(brokenAt(first), '0:E_SAID_INVALID')
    const swapped = [c.records[0], c.records[2], c.records[1], ...c.records.slice(3)]
    assert.equal(brokenAt(c.verify(swapped)), '1:E_SAID_INVALID')
  })

  test('re-signing with a key not in the KEL or a rotated-out key is detected', ({ assert }) => {
    const c = chain()
    // Edit, re-SAID and re-sign with a stranger's key, claiming the service.
    const forged = [...c.records]
    forged[3] = resign(edit(forged[3], { outcome: 'refused' }), c.stranger, c.service1.est)
    assert.equal(brokenAt(c.verify(forged)), '3:E_SIGNATURE_INVALID')
    // The old (rotated-out) service key signs a record after the rotation.
    const stale = [...c.records]
    stale[4] = resign(edit(stale[4], { outcome: 'failed' }), c.service0)
    const verdict = c.verify(stale)
    assert.equal(brokenAt(verdict), '4:E_SIGNATURE_INVALID')
    if (!verdict.ok) assert.include(verdict.reason, 'rotated out')
    // A chain signed by an AID that is not the service's.
    const other = c.records.map((entry) => resign(entry, c.stranger))
    assert.equal(brokenAt(c.verify(other)), '0:E_SIGNATURE_INVALID')
  })

  test('a service-key holder cannot forge or replay approvals', ({ assert }) => {
    const c = chain()
    // Claims the stranger approved instead of the officer, signed with the real service key.
    const swapped = c.approvals.approvers.map((a) =>
      a.role === 'security_officer' ? { ...a, aid: c.stranger.state.aid } : a
    )
    const recs = [...c.records]
    recs[2] = resign(
      edit(recs[2], { approvals: { ...c.approvals, approvers: swapped } }),
      c.service0
    )
    const verdict = c.verify(recs)
    assert.isFalse(verdict.ok)
    if (!verdict.ok) assert.equal(verdict.index, 2)
    // Drops a signature: the approval no longer holds.
    const oneSig = [...c.records]
    oneSig[2] = resign(
      edit(oneSig[2], {
        approvals: { ...c.approvals, signatures: c.approvals.signatures.slice(0, 1) },
      }),
      c.service0
    )
    assert.equal(brokenAt(c.verify(oneSig)), '2:E_APPROVAL_INSUFFICIENT')
    // The approval reused two hours later, after the request expired.
    const late = [...c.records]
    late[4] = resign(
      edit(late[4], { approvals: c.approvals, dt: new Date(T0 + 2 * 3_600_000).toISOString() }),
      c.service1
    )
    assert.equal(brokenAt(c.verify(late)), '4:E_APPROVAL_EXPIRED')
  })

  test('key event logs must replay; the service must have one', ({ assert }) => {
    const c = chain()
    const kels = { ...c.keyEventLogs }
    delete kels[c.service0.state.aid]
    assert.equal(
      brokenAt(verifyAuditChain(c.records, kels, c.credentials, c.options)),
      '0:E_APPROVER_UNKNOWN'
    )
    const tampered = { ...c.keyEventLogs, [c.service0.state.aid]: c.service1.kel.slice(1) }
    const verdict = verifyAuditChain(c.records, tampered, c.credentials, c.options)
    assert.equal(brokenAt(verdict), 'null:E_KEY_EVENT_INVALID')
  })
})

test.group('governance / audit chain: role policy', () => {
  test('with the policy, a governed act without the required approvals is detected', ({
    assert,
  }) => {
    const c = chain()
    const policy = {
      ...c.options,
      requiredRolesFor: (a: { act: string }) =>
        ['rotation.approved', 'rotation.executed'].includes(a.act)
          ? ['cto', 'security_officer']
          : [],
    }
    const verify = (recs: SignedAuditRecord[]) =>
      verifyAuditChain(recs, c.keyEventLogs, c.credentials, policy)
    assert.isTrue(verify(c.records).ok)
    // The service-key holder records the act with the officer's approval left out.
    const onlyCto = {
      ...c.approvals,
      signatures: c.approvals.signatures.slice(0, 1),
      approvers: c.approvals.approvers.filter((a) => a.role === 'cto'),
    }
    // (The chain is cut after the edited record: its SAID changed, so the next link would break.)
    const recs = c.records.slice(0, 3)
    recs[2] = resign(edit(recs[2], { approvals: onlyCto }), c.service0)
    assert.isTrue(c.verify(recs).ok, 'without the policy the recorded roles are taken as required')
    const verdict = verify(recs)
    assert.equal(brokenAt(verdict), '2:E_APPROVAL_INSUFFICIENT')
    if (!verdict.ok) assert.include(verdict.reason, 'security_officer')
    // Or with no approvals at all.
    const none = c.records.slice(0, 4)
    none[3] = resign(edit(none[3], { approvals: null }), c.service1)
    assert.equal(brokenAt(verify(none)), '3:E_APPROVAL_INSUFFICIENT')
  })
})

test.group('governance / audit chain: an approval stands behind its own act only', () => {
  test('the rotation of the approved KEK verifies', ({ assert }) => {
    const c = chain()
    const recs = chainOf([
      [c.service1, 'service.started', null, {}],
      [c.service1, 'rotation.started', c.approvals, { kek: 'orders', run: '1', status: 'running' }],
    ])
    assert.isTrue(c.verify(recs).ok)
  })

  test('a service-key holder attaching an approval to another KEK or another act is detected', ({
    assert,
  }) => {
    const c = chain()
    const otherKek = chainOf([
      [c.service1, 'service.started', null, {}],
      [c.service1, 'rotation.started', c.approvals, { kek: 'payments', run: '1' }],
    ])
    const verdict = c.verify(otherKek)
    assert.equal(brokenAt(verdict), '1:E_APPROVAL_MISMATCH')
    if (!verdict.ok) assert.include(verdict.reason, 'KEK "orders"')
    const otherAct = chainOf([
      [c.service1, 'service.started', null, {}],
      [c.service1, 'kek.trim', c.approvals, { kek: 'orders' }],
    ])
    const trimmed = c.verify(otherAct)
    assert.equal(brokenAt(trimmed), '1:E_APPROVAL_MISMATCH')
    if (!trimmed.ok) assert.include(trimmed.reason, '"rotate"')
    const registry = chainOf([
      [c.service1, 'service.started', null, {}],
      [c.service1, 'approver.register', c.approvals, { aid: c.stranger.state.aid }],
    ])
    assert.equal(brokenAt(c.verify(registry)), '1:E_APPROVAL_MISMATCH')
  })

  test('one approval shown behind two acts is detected at the second', ({ assert }) => {
    const c = chain()
    const twice = chainOf([
      [c.service1, 'rotation.started', c.approvals, { kek: 'orders', run: '1' }],
      [c.service1, 'rotation.finished', null, { kek: 'orders', run: '1' }],
      [c.service1, 'rotation.started', c.approvals, { kek: 'orders', run: '2' }],
    ])
    const verdict = c.verify(twice)
    assert.equal(brokenAt(verdict), '2:E_APPROVAL_MISMATCH')
    if (!verdict.ok) assert.include(verdict.reason, 'already consumed by record 0')
  })
})
