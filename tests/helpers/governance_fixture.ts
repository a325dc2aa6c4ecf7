/*
|--------------------------------------------------------------------------
| Governance fixture (tests)
|--------------------------------------------------------------------------
|
| A role authority and two approvers (`cto`, `security_officer`) with
| registered credentials, made with the real signify-ts primitives from
| random seeds (remembered as secrets for the log audit) and registered
| through the real services; helpers to ask for, sign, revoke and rotate.
| `dualControlOn(group)` switches dual control on for a group (the suite
| runs with DUAL_CONTROL=off). The fixture's own registrations (setup, not
| what a test checks) run with dual control off: approvers and credentials
| of earlier tests may already make the registry governed.
|
*/
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import type { Group } from '@japa/runner/core'
import { Signer } from 'signify-ts'
import type { GovernanceConfig } from '#app/governance_config'
import { encodeMessage } from '#app/governance/cesr_stream'
import { signApproval } from '#app/governance/approval_request'
import {
  issueRoleCredential,
  revokeRoleCredential,
  type SignedCredential,
} from '#app/governance/credentials'
import { makeInception, makeRotation } from '#app/governance/key_event_builders'
import { nextKeyDigest, replayKel } from '#app/governance/key_events'
import type { KeyState } from '#app/governance/key_state'
import { serialize } from '#app/governance/said'
import { signIndexed, type SigningEstablishment } from '#app/governance/signatures'
import { ApprovalService, type ApprovalStatus } from '#services/approval_service'
import { ApproverService } from '#services/approver_service'
import { CredentialService } from '#services/credential_service'
import { runAce } from '#tests/helpers/ace'
import type { ShiftedClock } from '#tests/helpers/clock'
import type { TestAid } from '#tests/helpers/governance'
import { rememberSecret } from '#tests/helpers/secrets'

/** A random one-key signer, its seed remembered as a secret. */
function randomSigner(): Signer {
  const raw = new Uint8Array(randomBytes(32))
  rememberSecret(Buffer.from(raw), 'approver seed')
  const signer = new Signer({ raw, transferable: true })
  rememberSecret(signer.qb64, 'approver seed (qb64)')
  return signer
}

function stateOf(aid: Pick<TestAid, 'kel'>): KeyState {
  const replayed = replayKel(aid.kel)
  if (!replayed.ok) throw new Error(replayed.reason)
  return replayed.state
}

function est(state: KeyState): SigningEstablishment {
  return { aid: state.aid, sn: state.sn, said: state.lastSaid }
}

/** Runs a fixture registration with dual control off (it may be governed already). */
async function arranging<T>(work: () => Promise<T>): Promise<T> {
  const before = app.config.get<GovernanceConfig>('governance').dualControl
  app.config.set('governance.dualControl', false)
  try {
    return await work()
  } finally {
    app.config.set('governance.dualControl', before)
  }
}

/** A new AID (an approver, or a role authority) and its signed inception, not registered. */
export function newAid(): TestAid & { inception: string } {
  const current = [randomSigner()]
  const next = [randomSigner()]
  const event = makeInception({
    keys: current.map((s) => s.verfer.qb64),
    nextDigests: next.map((s) => nextKeyDigest(s.verfer.qb64)),
  })
  const kel = [{ event, sigs: signIndexed(serialize(event).raw, current) }]
  const state = stateOf({ kel })
  return { kel, state, current, next, est: est(state), inception: encodeMessage(kel[0]) }
}

/** A new registered AID (an approver, or a role authority). */
async function registerNew(name: string, authority = false): Promise<TestAid> {
  const { inception, ...aid } = newAid()
  const approvers = await app.container.make(ApproverService)
  await arranging(() => approvers.register({ name, inception, authority }, { actor: 'tests' }))
  return aid
}

/** An authority, a CTO and a security officer, registered with their credentials. */
export interface GovernanceFixture {
  authority: TestAid
  cto: TestAid
  officer: TestAid
  credentials: Map<string, SignedCredential>
  /** Registers another approver holding `roles` (credentials from the fixture's authority). */
  approver(name: string, roles: string[]): Promise<TestAid>
  /** Issues a credential granting `role` to `subject` (not registered). */
  issue(subject: TestAid, role: string): SignedCredential
  /** Issues and registers a credential granting `role` to `subject`. */
  grant(subject: TestAid, role: string): Promise<SignedCredential>
  /** Asks for an act; answers the request SAID. */
  request(
    action: string,
    kek: string,
    params?: Record<string, string>,
    expiresInMs?: number
  ): Promise<string>
  /** Signs a request with `who`'s current keys and submits it. */
  sign(said: string, who: TestAid): Promise<ApprovalStatus>
  /** Asks for an act and has the CTO and the security officer sign it. */
  approved(action: string, kek: string, params?: Record<string, string>): Promise<string>
  /** Revokes a credential (signed by the authority). */
  revoke(credential: SignedCredential): Promise<void>
  /** Rotates `who`'s keys on the server; answers its new test AID (mutates the fixture's entry). */
  rotate(who: TestAid): Promise<TestAid>
}

/** Sets up the fixture against the run's database. */
export async function governanceFixture(): Promise<GovernanceFixture> {
  const tag = randomBytes(3).toString('hex')
  const authority = await registerNew(`authority-${tag}`, true)
  const credentials = new Map<string, SignedCredential>()
  const issue = (subject: TestAid, role: string) =>
    issueRoleCredential({
      issuer: authority.est,
      signers: authority.current,
      subject: subject.state.aid,
      role,
      dt: new Date(Date.now() - 60_000).toISOString(),
    })
  const grant = async (subject: TestAid, role: string) => {
    const signed = issue(subject, role)
    const service = await app.container.make(CredentialService)
    await arranging(() => service.register(signed, { actor: 'tests' }))
    credentials.set(`${subject.state.aid}/${role}`, signed)
    return signed
  }
  const approver = async (name: string, roles: string[]) => {
    const aid = await registerNew(`${name}-${tag}`)
    for (const role of roles) await grant(aid, role)
    return aid
  }
  const cto = await approver('cto', ['cto'])
  const officer = await approver('officer', ['security_officer'])
  const fixture: GovernanceFixture = {
    authority,
    cto,
    officer,
    credentials,
    approver,
    issue,
    grant,
    async request(action, kek, params = {}, expiresInMs) {
      const approvals = await app.container.make(ApprovalService)
      const status = await approvals.create({
        action,
        kek,
        params,
        expiresInMs,
        requester: 'tests',
      })
      return status.said
    },
    async sign(said, who) {
      const approvals = await app.container.make(ApprovalService)
      const request = await approvals.document(said)
      return approvals.sign(said, signApproval(request, who.current, who.est), who.state.aid)
    },
    async approved(action, kek, params = {}) {
      const said = await fixture.request(action, kek, params)
      await fixture.sign(said, fixture.cto)
      await fixture.sign(said, fixture.officer)
      return said
    },
    async revoke(credential) {
      const signed = revokeRoleCredential({
        credential: credential.credential,
        issuer: authority.est,
        signers: authority.current,
        dt: new Date().toISOString(),
      })
      const service = await app.container.make(CredentialService)
      await arranging(() => service.revoke(signed, { actor: 'tests' }))
    },
    async rotate(who) {
      const current = who.next
      const next = [randomSigner()]
      const event = makeRotation(who.state, {
        keys: current.map((s) => s.verfer.qb64),
        nextDigests: next.map((s) => nextKeyDigest(s.verfer.qb64)),
      })
      const entry = { event, sigs: signIndexed(serialize(event).raw, current) }
      const approvers = await app.container.make(ApproverService)
      await approvers.rotate(encodeMessage(entry))
      const kel = [...who.kel, entry]
      const state = stateOf({ kel })
      return Object.assign(who, { kel, state, current, next, est: est(state) })
    },
  }
  return fixture
}

/** Dual control on for every test of `group` (restored after each). */
export function dualControlOn(group: Group) {
  group.each.setup(() => {
    const config = app.config.get<GovernanceConfig>('governance')
    const before = config.dualControl
    app.config.set('governance.dualControl', true)
    return () => app.config.set('governance.dualControl', before)
  })
}

/**
 * Moves `clock` so that its now is not behind the audit trail's last record
 * (other tests move time forward and records never go back in time: an
 * approval judged at the chain's time would otherwise look expired).
 * Answers the offset set; tests shift time relative to it.
 */
export async function clockAheadOfAuditTrail(clock: ShiftedClock): Promise<number> {
  const { rows } = await db.rawQuery('SELECT record FROM audit_events ORDER BY seq DESC LIMIT 1')
  const last = rows[0] ? Date.parse(JSON.parse(rows[0].record).a.dt) : 0
  clock.offsetMs = Math.max(0, last - Date.now() + 1000)
  return clock.offsetMs
}

/** A stored audit record's attributes (`a`). */
export type AuditAttributesOf = {
  act: string
  actor: string
  outcome: string
  approvals: null | { request: { d: string }; approvers: Array<{ aid: string; role: string }> }
  data: Record<string, unknown>
}

/** The audit records of `act` whose `data[key]` is `value`, oldest first. */
export async function auditRecordsOf(
  act: string,
  key: string,
  value: string
): Promise<AuditAttributesOf[]> {
  const { rows } = await db.rawQuery(
    `SELECT record FROM audit_events
      WHERE (record::json -> 'a' ->> 'act') = ? AND (record::json -> 'a' -> 'data' ->> ?) = ?
      ORDER BY seq`,
    [act, key, value]
  )
  return rows.map((row: { record: string }) => JSON.parse(row.record).a)
}

/** audit:verify passes over the whole chain and audit:export writes it. */
export async function assertAuditChainIntact(assert: {
  equal(actual: unknown, expected: unknown, message?: string): void
}) {
  const verify = await runAce('audit:verify', ['--json'])
  assert.equal(verify.exitCode, 0, verify.all.join('\n'))
  assert.equal(verify.json?.ok, true)
  const out = join(await mkdtemp(join(tmpdir(), 'rewrap-audit-')), 'audit.json')
  const exported = await runAce('audit:export', ['--out', out, '--json'])
  assert.equal(exported.exitCode, 0, exported.all.join('\n'))
  const document = JSON.parse(await readFile(out, 'utf8'))
  assert.equal(document.records.length, verify.json.count)
}
