import { readFile } from 'node:fs/promises'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import { ready } from 'signify-ts'
import { KmsManager } from '#kms/kms_manager'
import { ApprovalService } from '#services/approval_service'
import { AuditExportService } from '#services/audit_export_service'
import { Clock } from '#services/clock'
import { KekPolicies } from '#services/kek_policies'
import { MetricsService } from '#services/metrics_service'
import { RotationScheduler } from '#services/rotation_scheduler'
import { RotationStatusService } from '#services/rotation_status_service'
import { ShiftedClock } from '#tests/helpers/clock'
import {
  clockAheadOfAuditTrail,
  dualControlOn,
  governanceFixture,
  type GovernanceFixture,
} from '#tests/helpers/governance_fixture'
import { manageKeks } from '#tests/helpers/kek_policies'
import { createKek, kekName, latestVersion, seed, versionCounts } from '#tests/helpers/rotation'
import { shiftedKms } from '#tests/helpers/shifted_kms'
import { waitFor } from '#tests/helpers/wait'

/*
| The scheduler under dual control (issue 12 item 5): a due rotation runs
| only under a dual-approved standing-rotation policy, verified before
| each run and reused until its `until`; without one it is "due, not
| authorized" in the tick, /rotations/status, /metrics and the log.
*/

await ready()

const DAY = 86_400_000
const clock = new ShiftedClock()
let fx: GovernanceFixture

async function tick() {
  const scheduler = await app.container.make(RotationScheduler)
  return scheduler.tick({ rotate: { batchSize: 100 } })
}

async function statusOf(kek: string) {
  const status = await app.container.make(RotationStatusService)
  const report = await status.status(kek)
  return report.keks[0]
}

/** A standing policy for `kek` valid a year from now, signed by `signers` of the fixture. */
async function standing(kek: string, cryptoperiod = '90d', signers = [fx.cto, fx.officer]) {
  const until = new Date(clock.now().getTime() + 365 * DAY).toISOString()
  const said = await fx.request('standing-rotation', kek, { cryptoperiod, until })
  for (const who of signers) await fx.sign(said, who)
  return said
}

test.group('dual control: scheduler standing policy', (group) => {
  dualControlOn(group)
  group.setup(async () => {
    fx = await governanceFixture()
    app.container.swap(KmsManager, async () => shiftedKms(clock))
    app.container.swap(Clock, () => clock)
    return () => {
      app.container.restore(KmsManager)
      app.container.restore(Clock)
      app.container.restore(KekPolicies)
    }
  })
  group.each.setup(async () => {
    await clockAheadOfAuditTrail(clock)
  })

  test('a due rotation without a valid policy is "due, not authorized" in the tick, status, metrics and log', async ({
    assert,
  }) => {
    const kek = kekName('sched')
    manageKeks(kek)
    await createKek(kek)
    await seed(kek, 10)
    // Policies that do not count: one signature only; another cryptoperiod.
    await standing(kek, '90d', [fx.cto])
    await standing(kek, '30d')
    clock.offsetMs += 91 * DAY

    const [decision] = await tick()
    assert.equal(decision.action, 'unauthorized')
    assert.match(decision.reason, /^due, not authorized: /)
    assert.equal(await latestVersion(kek), 1, 'not rotated')

    const status = await statusOf(kek)
    assert.isTrue(status.rotationDue)
    assert.equal(status.authorization, 'due, not authorized')
    assert.isNull(status.standingPolicy)
    const metrics = await app.container.make(MetricsService)
    assert.include(await metrics.render(), `rewrap_kek_rotation_due_not_authorized{kek="${kek}"} 1`)
    await waitFor(async () => {
      const log = await readFile(process.env.LOG_FILE!, 'utf8')
      return log.split('\n').some((l) => l.includes('due, not authorized') && l.includes(kek))
    })
  })

  test('runs under a valid standing policy, before each run, without consuming it', async ({
    assert,
  }) => {
    const kek = kekName('sched')
    manageKeks(kek)
    await createKek(kek)
    await seed(kek, 10)
    const said = await standing(kek)
    clock.offsetMs += 91 * DAY
    const before = await statusOf(kek)
    assert.equal(before.standingPolicy, said)
    assert.isNull(before.authorization)

    const [first] = await tick()
    assert.equal(first.action, 'rotated', first.reason)
    assert.deepEqual(await versionCounts(kek), { 2: 10 })
    clock.offsetMs += 91 * DAY
    const [second] = await tick()
    assert.equal(second.action, 'rotated', second.reason)
    assert.equal(await latestVersion(kek), 3)

    const approvals = await app.container.make(ApprovalService)
    const policy = await approvals.status(said)
    assert.equal(policy.state, 'pending', 'a standing policy is not consumed')
    const metrics = await app.container.make(MetricsService)
    assert.notInclude(
      await metrics.render(),
      `rewrap_kek_rotation_due_not_authorized{kek="${kek}"} 1`
    )

    // The runs' records carry the policy; the chain (and its approvals) verifies.
    const exports = await app.container.make(AuditExportService)
    const verdict = await exports.verify()
    assert.isTrue(verdict.ok, JSON.stringify(verdict))
  })
})
