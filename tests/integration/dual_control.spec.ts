import { readFile } from 'node:fs/promises'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { ready } from 'signify-ts'
import { defineConfig } from '#app/governance_config'
import { signApproval } from '#app/governance/approval_request'
import type { AuditRecord } from '#app/governance/audit_record'
import { ApprovalService } from '#services/approval_service'
import { AuditExportService } from '#services/audit_export_service'
import { Clock } from '#services/clock'
import { KeyLifecycleService } from '#services/key_lifecycle_service'
import { KeyRotationService } from '#services/key_rotation_service'
import { ReencryptService } from '#services/reencrypt_service'
import { runAce } from '#tests/helpers/ace'
import { spawnAce } from '#tests/helpers/ace_child'
import { ShiftedClock } from '#tests/helpers/clock'
import { waitFor } from '#tests/helpers/wait'
import { rejectsWith } from '#tests/helpers/errors'
import {
  clockAheadOfAuditTrail,
  dualControlOn,
  governanceFixture,
  type GovernanceFixture,
} from '#tests/helpers/governance_fixture'
import {
  createKek,
  kekName,
  kmsDriver,
  latestVersion,
  seed,
  versionCounts,
} from '#tests/helpers/rotation'

/*
| Dual control (issue 12 items 3-4): every governed act runs only under an
| approved request — real Postgres, real signify-ts signatures, the real
| services and Ace kernel. Each refusal leaves the KEK, the rows and the
| runs as they were, and is recorded in the audit trail.
*/

await ready()

const HOUR = 3_600_000
const DAY = 24 * HOUR
const clock = new ShiftedClock()
/** The clock offset each test starts from (see clockAheadOfAuditTrail). */
let base = 0

let fx: GovernanceFixture
async function fixture() {
  fx ??= await governanceFixture()
  return fx
}

async function runsOf(kek: string) {
  const { rows } = await db.rawQuery('SELECT id FROM key_rotations WHERE kek_name = ?', [kek])
  return rows.length
}

async function records(filter: (r: AuditRecord) => boolean): Promise<AuditRecord[]> {
  const { rows } = await db.rawQuery('SELECT record FROM audit_events ORDER BY seq')
  return rows.map((r: { record: string }) => JSON.parse(r.record) as AuditRecord).filter(filter)
}

async function assertChainIntact(assert: any) {
  const exports = await app.container.make(AuditExportService)
  const verdict = await exports.verify()
  assert.isTrue(verdict.ok, JSON.stringify(verdict))
}

/** A KEK with rows; answers its name. */
async function kekWithRows(rows = 20) {
  const kek = kekName('dual')
  await createKek(kek)
  await seed(kek, rows)
  return kek
}

/** Asserts a refused rotation changed nothing and was recorded with `code`. */
async function assertRefused(assert: any, kek: string, code: string, approval?: string) {
  const rotations = await app.container.make(KeyRotationService)
  const error = await rejectsWith(rotations.rotate(kek, { approval, requestedBy: 'eve' }), code)
  assert.equal(await latestVersion(kek), 1, 'the KEK was not rotated')
  assert.equal(await runsOf(kek), 0, 'no run was started')
  const refused = await records((r) => r.a.act === 'approval.refused' && r.a.data.kek === kek)
  assert.equal(refused.at(-1)?.a.data.code, code)
  assert.equal(refused.at(-1)?.a.actor, 'eve')
  assert.isNull(refused.at(-1)?.a.approvals)
  return error
}

test.group('dual control: the switch', () => {
  test('the product default is on: no dualControl in config, no DUAL_CONTROL in the environment', async ({
    assert,
  }) => {
    const config = defineConfig({
      roles: ['cto'],
      defaultRequired: ['cto'],
      roleVerifier: () => import('#services/stored_role_verifier'),
    })
    assert.isTrue(config.dualControl)
    // A real `node ace` process started without DUAL_CONTROL refuses an act without approval.
    const kek = await kekWithRows(1)
    const saved = process.env.DUAL_CONTROL
    delete process.env.DUAL_CONTROL
    const child = spawnAce(['kek:retire', kek])
    process.env.DUAL_CONTROL = saved
    try {
      assert.equal(await child.exited, 1)
      const lines = child.output().trim().split('\n')
      assert.lengthOf(lines, 1, child.output())
      assert.match(lines[0], /E_APPROVAL_REQUIRED/)
    } finally {
      child.killIfRunning()
    }
  })

  test('off: an act without approval runs, with a warning naming the act', async ({ assert }) => {
    const kek = await kekWithRows(5)
    const rotations = await app.container.make(KeyRotationService)
    const run = await rotations.rotate(kek, { requestedBy: 'dev' })
    assert.equal(run.status, 'completed')
    const started = await records((r) => r.a.act === 'rotation.started' && r.a.data.kek === kek)
    assert.isNull(started[0].a.approvals)
    await waitFor(async () => {
      const log = await readFile(process.env.LOG_FILE!, 'utf8')
      return log
        .split('\n')
        .some(
          (line) =>
            line.includes('dual control is off') &&
            line.includes('"act":"rotate"') &&
            line.includes(`"kek":"${kek}"`)
        )
    })
  })
})

test.group('dual control: rotation', (group) => {
  dualControlOn(group)
  group.each.setup(async () => {
    base = await clockAheadOfAuditTrail(clock)
    app.container.swap(Clock, () => clock)
    return () => app.container.restore(Clock)
  })

  test('refused with no approval, one approval, two of the same role', async ({ assert }) => {
    const f = await fixture()
    const kek = await kekWithRows()
    await assertRefused(assert, kek, 'E_APPROVAL_REQUIRED')

    const one = await f.request('rotate', kek)
    await f.sign(one, f.cto)
    const error = await assertRefused(assert, kek, 'E_APPROVAL_INSUFFICIENT', one)
    assert.include(error.message, 'security_officer', 'the missing role is named')

    const secondCto = await f.approver('cto2', ['cto'])
    const sameRole = await f.request('rotate', kek)
    await f.sign(sameRole, f.cto)
    await f.sign(sameRole, secondCto)
    const again = await assertRefused(assert, kek, 'E_APPROVAL_INSUFFICIENT', sameRole)
    assert.include(again.message, 'security_officer')
  })

  test('refused when one AID signs twice or holds both roles alone', async ({ assert }) => {
    const f = await fixture()
    const kek = await kekWithRows()
    const both = await f.approver('both', ['cto', 'security_officer'])
    const said = await f.request('rotate', kek)
    await f.sign(said, both)
    await rejectsWith(f.sign(said, both), 'E_SAME_APPROVER')
    const approvals = await app.container.make(ApprovalService)
    const status = await approvals.status(said)
    assert.lengthOf(status.signers, 1)
    const error = await assertRefused(assert, kek, 'E_APPROVAL_INSUFFICIENT', said)
    assert.match(error.message, /security_officer|cto/)
  })

  test('refused after a credential is revoked', async ({ assert }) => {
    const f = await fixture()
    const kek = await kekWithRows()
    const officer = await f.approver('officer-r', ['security_officer'])
    const said = await f.request('rotate', kek)
    await f.sign(said, f.cto)
    await f.sign(said, officer)
    await f.revoke(f.credentials.get(`${officer.state.aid}/security_officer`)!)
    await assertRefused(assert, kek, 'E_CREDENTIAL_REVOKED', said)
    // And a revoked holder cannot sign a new request.
    const next = await f.request('rotate', kek)
    await rejectsWith(f.sign(next, officer), 'E_CREDENTIAL_REVOKED')
  })

  test('refused when expired, and when the request is for another act', async ({ assert }) => {
    const f = await fixture()
    const kek = await kekWithRows()
    const said = await f.approved('rotate', kek)
    clock.offsetMs = base + 25 * HOUR
    await assertRefused(assert, kek, 'E_APPROVAL_EXPIRED', said)

    const other = await f.approved('rotate', kekName('other'))
    await assertRefused(assert, kek, 'E_APPROVAL_MISMATCH', other)
    const pinned = await f.approved('rotate', kek, { target_version: '1' })
    await assertRefused(assert, kek, 'E_APPROVAL_MISMATCH', pinned)
    const retire = await f.approved('retire', kek)
    await assertRefused(assert, kek, 'E_APPROVAL_MISMATCH', retire)
    await assertRefused(assert, kek, 'E_APPROVAL_NOT_FOUND', 'E' + 'A'.repeat(43))
  })

  test('refused when a signer rotated its keys since signing, or signed with rotated-out keys', async ({
    assert,
  }) => {
    const f = await fixture()
    const kek = await kekWithRows()
    const officer = await f.approver('officer-k', ['security_officer'])
    const said = await f.request('rotate', kek)
    await f.sign(said, f.cto)
    const oldKeys = { current: officer.current, est: officer.est }
    await f.sign(said, officer)
    await f.rotate(officer)
    await assertRefused(assert, kek, 'E_SIGNATURE_INVALID', said)

    // Signing a new request with the rotated-out keys is refused at once.
    const next = await f.request('rotate', kek)
    const approvals = await app.container.make(ApprovalService)
    const request = await approvals.document(next)
    await rejectsWith(
      approvals.sign(next, signApproval(request, oldKeys.current, oldKeys.est), officer.state.aid),
      'E_SIGNATURE_INVALID'
    )
  })

  test('runs with two valid approvals; the record carries them; the approval is used once', async ({
    assert,
  }) => {
    const f = await fixture()
    const kek = await kekWithRows()
    const said = await f.approved('rotate', kek)
    const approvals = await app.container.make(ApprovalService)
    const before = await approvals.status(said)
    assert.isTrue(before.approved)
    assert.deepEqual(before.missing, [])

    // Through the real Ace kernel.
    const run = await runAce('rotate:kek', [kek, '--approval', said, '--json'])
    assert.equal(run.exitCode, 0, run.all.join('\n'))
    assert.equal(run.json.status, 'completed')
    assert.equal(await latestVersion(kek), 2)
    assert.deepEqual(await versionCounts(kek), { 2: 20 })

    const after = await approvals.status(said)
    assert.equal(after.state, 'used')
    assert.equal(after.usedBy, `rotation run #${run.json.id}`)
    const [started] = await records(
      (r) => r.a.act === 'rotation.started' && r.a.data.run === run.json.id
    )
    assert.equal(started.a.approvals?.request.d, said)
    assert.lengthOf(started.a.approvals!.signatures, 2)
    assert.sameMembers(
      started.a.approvals!.approvers.map((a) => a.aid),
      [f.cto.state.aid, f.officer.state.aid]
    )

    const reused = await runAce('rotate:kek', [kek, '--approval', said])
    assert.equal(reused.exitCode, 1)
    assert.lengthOf(reused.all, 1)
    assert.match(reused.all[0], /E_APPROVAL_USED/)
    assert.equal(await latestVersion(kek), 2)
    await assertChainIntact(assert)
  })

  test('two acts racing for one approval: exactly one runs', async ({ assert }) => {
    const f = await fixture()
    const kek = await kekWithRows(5)
    const said = await f.approved('rotate', kek)
    const lifecycle = await app.container.make(KeyRotationService)
    const results = await Promise.allSettled([
      lifecycle.rotate(kek, { approval: said, rotate: false }),
      lifecycle.rotate(kek, { approval: said }),
      lifecycle.rotate(kek, { approval: said }),
    ])
    const ok = results.filter((r) => r.status === 'fulfilled')
    assert.lengthOf(ok, 1)
    for (const r of results) {
      if (r.status === 'rejected') {
        assert.include(
          ['E_APPROVAL_USED', 'E_ROTATION_IN_PROGRESS', 'E_APPROVAL_MISMATCH'],
          (r.reason as { code: string }).code
        )
      }
    }
    assert.equal(await latestVersion(kek), 2)
  })

  test('resume runs under the approval that started the run', async ({ assert }) => {
    const f = await fixture()
    const kek = await kekWithRows(30)
    const said = await f.approved('rotate', kek)
    const rotations = await app.container.make(KeyRotationService)
    const controller = new AbortController()
    const stopped = await rotations.rotate(kek, {
      approval: said,
      batchSize: 10,
      signal: controller.signal,
      onProgress: () => controller.abort('operator'),
    })
    assert.equal(stopped.status, 'cancelled')
    const resumed = await rotations.rotate(kek, { resume: true })
    assert.equal(resumed.status, 'completed')
    assert.deepEqual(await versionCounts(kek), { 2: 30 })
  })
})

test.group('dual control: retire, unretire, trim, reencrypt', (group) => {
  dualControlOn(group)
  group.each.setup(async () => {
    base = await clockAheadOfAuditTrail(clock)
    app.container.swap(Clock, () => clock)
    return () => app.container.restore(Clock)
  })

  test('retire, unretire and trim: refused without or with a partial approval; run with two', async ({
    assert,
  }) => {
    const f = await fixture()
    const kek = await kekWithRows(5)
    const rotations = await app.container.make(KeyRotationService)
    await rotations.rotate(kek, { approval: await f.approved('rotate', kek) })
    clock.offsetMs = base + 25 * HOUR
    const lifecycle = await app.container.make(KeyLifecycleService)

    await rejectsWith(lifecycle.retire(kek), 'E_APPROVAL_REQUIRED')
    const partial = await f.request('retire', kek)
    await f.sign(partial, f.officer)
    await rejectsWith(lifecycle.retire(kek, { approval: partial }), 'E_APPROVAL_INSUFFICIENT')
    const forTrim = await f.approved('trim', kek)
    await rejectsWith(lifecycle.retire(kek, { approval: forTrim }), 'E_APPROVAL_MISMATCH')
    const kekInfo = async () => {
      const driver = await kmsDriver(kek)
      const info = await driver.readKey(kek)
      return info!
    }
    const unchanged = await kekInfo()
    assert.equal(unchanged.minDecryptionVersion, 1)

    const retired = await lifecycle.retire(kek, { approval: await f.approved('retire', kek) })
    assert.isTrue(retired.changed)
    assert.equal(retired.minDecryptionVersion, 2)
    const [record] = await records((r) => r.a.act === 'kek.retire' && r.a.data.kek === kek)
    assert.lengthOf(record.a.approvals!.approvers, 2)

    await rejectsWith(lifecycle.unretire(kek), 'E_APPROVAL_REQUIRED')
    const wrongTo = await f.approved('unretire', kek, { to: '2' })
    await rejectsWith(lifecycle.unretire(kek, { approval: wrongTo }), 'E_APPROVAL_MISMATCH')
    const unretired = await lifecycle.unretire(kek, {
      approval: await f.approved('unretire', kek, { to: '1' }),
      to: 1,
    })
    assert.equal(unretired.minDecryptionVersion, 1)
    await lifecycle.retire(kek, { approval: await f.approved('retire', kek) })

    clock.offsetMs = base + 25 * HOUR + 31 * DAY
    await rejectsWith(lifecycle.trim(kek), 'E_APPROVAL_REQUIRED')
    const trimOne = await f.request('trim', kek)
    await f.sign(trimOne, f.cto)
    await rejectsWith(lifecycle.trim(kek, { approval: trimOne }), 'E_APPROVAL_INSUFFICIENT')
    const untrimmed = await kekInfo()
    assert.isAtMost(untrimmed.minAvailableVersion, 1)
    const trimmed = await lifecycle.trim(kek, { approval: await f.approved('trim', kek) })
    assert.isTrue(trimmed.changed)
    assert.equal(trimmed.minAvailableVersion, 2)
    await assertChainIntact(assert)
  })

  test('reencrypt: refused without approval, for another target, or used; runs with two', async ({
    assert,
  }) => {
    const f = await fixture()
    const from = await kekWithRows(8)
    const to = kekName('dual-to')
    await createKek(to)
    const service = await app.container.make(ReencryptService)
    await rejectsWith(service.reencrypt(from, to), 'E_APPROVAL_REQUIRED')
    const elsewhere = await f.approved('reencrypt', from, { to: kekName('x') })
    await rejectsWith(service.reencrypt(from, to, { approval: elsewhere }), 'E_APPROVAL_MISMATCH')
    const { rows: none } = await db.rawQuery('SELECT id FROM reencrypt_runs WHERE from_kek = ?', [
      from,
    ])
    assert.lengthOf(none, 0)

    const said = await f.approved('reencrypt', from, { to })
    const run = await service.reencrypt(from, to, { approval: said, actor: 'ops' })
    assert.equal(run.status, 'completed')
    assert.equal(run.reencrypted, 8)
    const [started] = await records(
      (r) => r.a.act === 'reencrypt.started' && r.a.data.run === run.id
    )
    assert.equal(started.a.approvals?.request.d, said)
    await rejectsWith(service.reencrypt(from, to, { approval: said }), 'E_APPROVAL_USED')
    await assertChainIntact(assert)
  })
})
