/*
|--------------------------------------------------------------------------
| Rotation scheduler
|--------------------------------------------------------------------------
|
| The decision of the scheduled task (start/scheduler.ts), per managed KEK:
|   1. an unfinished run (crashed, failed, stopped by a shutdown) → resume
|      it; one an operator cancelled stays paused (skipped, until resumed
|      by hand), and the KEK is not rotated meanwhile;
|   2. else the latest version's age (KMS creation time vs the Clock) ≥ the
|      cryptoperiod → rotate and rewrap;
|   3. else rows below the latest version (a rotation done outside the app,
|      e.g. Vault auto-rotation) → rewrap them (rotate: false);
|   4. else nothing.
| Decisions come from key ages, not from when the task fired: a scheduler
| that was down catches up at its next tick, once. Each KEK's decision and
| action run under a per-KEK scheduler advisory lock, so two scheduler
| processes never both decide to rotate; a rotation already running
| elsewhere (E_ROTATION_IN_PROGRESS) is "someone else is on it".
| Dual control: steps 2 and 3 run only under a dual-approved standing
| policy of the KEK (`approval:request standing-rotation`), verified before
| each run and not consumed; without one the KEK is reported "due, not
| authorized" (logged as a warning, shown by /rotations/status and
| /metrics), never skipped silently. Resuming (step 1) runs under the
| approval that started the run.
|
*/
import { inject } from '@adonisjs/core'
import logger from '@adonisjs/core/services/logger'
import { errorCode } from '#app/errors'
import { KmsManager } from '#kms/kms_manager'
import { Clock } from '#services/clock'
import { KekPolicies, type KekPolicy } from '#services/kek_policies'
import { KeyRotationService, type RotateOptions } from '#services/key_rotation_service'
import { AdvisoryLock, lockKeys, type HeldLock } from '#services/advisory_lock'
import { ApprovalGate } from '#services/approval_gate'
import { RotationStore, type RotationRun } from '#services/rotation_store'

/** What one tick did for one KEK. */
export interface TickDecision {
  kekName: string
  action:
    'none' | 'rotated' | 'resumed' | 'rewrapped' | 'busy' | 'skipped' | 'failed' | 'unauthorized'
  /** Why, in one line (no secrets). */
  reason: string
  /** When the next rotation is due (latest version creation + cryptoperiod). */
  dueAt: string | null
  run: RotationRun | null
}

/** Options of a tick. */
export interface TickOptions {
  /** Rewrap options passed to the rotation service (batch size, throttle, abort). */
  rotate?: Pick<RotateOptions, 'batchSize' | 'sleepMs' | 'maxRate' | 'niceRatio' | 'signal'>
}

/** What status, metrics and logs say of a due rotation without a valid standing policy. */
export const DUE_NOT_AUTHORIZED = 'due, not authorized'

/** Errors that mean "another process is on it". */
const BUSY_CODES = new Set(['E_ROTATION_IN_PROGRESS', 'E_ROTATION_UNFINISHED'])

/**
 * Decides and runs the scheduled rotations of managed KEKs.
 */
@inject()
export class RotationScheduler {
  constructor(
    private kms: KmsManager,
    private clock: Clock,
    private rotations: KeyRotationService,
    private policies: KekPolicies,
    private store: RotationStore,
    private locks: AdvisoryLock,
    private gate: ApprovalGate
  ) {}

  /**
   * One pass over every managed KEK, one after the other. Never throws for
   * one KEK's failure: it is reported (and logged) and the next KEK goes on.
   */
  async tick(options: TickOptions = {}): Promise<TickDecision[]> {
    const decisions: TickDecision[] = []
    for (const policy of this.policies.managed()) {
      const decision = await this.#tickKek(policy, options)
      const level =
        decision.action === 'failed'
          ? 'error'
          : decision.action === 'unauthorized'
            ? 'warn'
            : 'info'
      logger[level](
        { kek: decision.kekName, action: decision.action, run: decision.run?.id ?? null },
        `scheduler: ${decision.reason}`
      )
      decisions.push(decision)
    }
    return decisions
  }

  async #tickKek(policy: KekPolicy, options: TickOptions): Promise<TickDecision> {
    const decision: TickDecision = {
      kekName: policy.name,
      action: 'none',
      reason: '',
      dueAt: null,
      run: null,
    }
    let lock: HeldLock | null
    try {
      lock = await this.locks.tryAcquire(lockKeys.scheduler(policy.name))
    } catch (error) {
      return { ...decision, action: 'failed', reason: `lock: ${errorCode(error)}` }
    }
    if (!lock) {
      return { ...decision, action: 'busy', reason: 'another scheduler is deciding for this KEK' }
    }
    try {
      return await this.#decide(policy, options, decision)
    } catch (error) {
      const code = errorCode(error)
      if (BUSY_CODES.has(code)) {
        return { ...decision, action: 'busy', reason: `another process is on it (${code})` }
      }
      return { ...decision, action: 'failed', reason: `${code}` }
    } finally {
      await lock.release()
    }
  }

  async #decide(
    policy: KekPolicy,
    options: TickOptions,
    decision: TickDecision
  ): Promise<TickDecision> {
    const driver = await this.kms.forKek(policy.name)
    const info = await driver.readKey(policy.name)
    if (!info) return { ...decision, action: 'skipped', reason: 'KEK does not exist in the KMS' }
    const base: RotateOptions = { ...options.rotate, trigger: 'scheduler', requestedBy: null }

    const unfinished = await this.store.findUnfinished(policy.name)
    if (unfinished?.status === 'cancelled' && unfinished.cancelledBy === 'operator') {
      return {
        ...decision,
        action: 'skipped',
        reason: `run #${unfinished.id} was cancelled by an operator; it stays paused until \`node ace rotate:kek ${policy.name} --resume\` (or POST /rotations with resume)`,
        run: unfinished,
      }
    }
    if (unfinished) {
      const run = await this.rotations.rotate(policy.name, { ...base, resume: true })
      return this.#ran(decision, 'resumed', `resumed run #${run.id}: ${run.status}`, run)
    }

    const latest = info.versions.find((v) => v.version === info.latestVersion)
    if (!latest) {
      return {
        ...decision,
        action: 'skipped',
        reason: `the KMS reports no creation time for v${info.latestVersion}`,
      }
    }
    const dueAt = new Date(latest.createdAt.getTime() + policy.cryptoperiodMs)
    decision.dueAt = dueAt.toISOString()
    if (this.clock.now().getTime() >= dueAt.getTime()) {
      const authorized = await this.#authorize(policy, base)
      if (!authorized.ok) return { ...decision, action: 'unauthorized', reason: authorized.reason }
      const run = await this.rotations.rotate(policy.name, authorized.options)
      return this.#ran(
        decision,
        'rotated',
        `v${info.latestVersion} reached its cryptoperiod; rotated to v${run.targetVersion}: ${run.status}`,
        run
      )
    }

    const stale = await this.store.countStale(policy.name, info.latestVersion)
    if (stale > 0) {
      const authorized = await this.#authorize(policy, base)
      if (!authorized.ok) return { ...decision, action: 'unauthorized', reason: authorized.reason }
      const run = await this.rotations.rotate(policy.name, { ...authorized.options, rotate: false })
      return this.#ran(
        decision,
        'rewrapped',
        `${stale} rows below v${info.latestVersion} (rotated outside the app): ${run.status}`,
        run
      )
    }
    return { ...decision, reason: `nothing to do; next rotation due ${decision.dueAt}` }
  }

  /**
   * The rotate options under the KEK's valid standing policy, or "due, not
   * authorized" and why. With dual control off, the options as they are
   * (the gate logs the warning).
   */
  async #authorize(
    policy: KekPolicy,
    base: RotateOptions
  ): Promise<{ ok: true; options: RotateOptions } | { ok: false; reason: string }> {
    if (!this.gate.dualControl) return { ok: true, options: base }
    const found = await this.gate.standingPolicy(policy.name, policy.cryptoperiodMs)
    if (found.said === null) {
      return { ok: false, reason: `${DUE_NOT_AUTHORIZED}: ${found.reason}` }
    }
    const standing = { cryptoperiodMs: policy.cryptoperiodMs }
    return { ok: true, options: { ...base, approval: found.said, standing } }
  }

  #ran(
    decision: TickDecision,
    action: TickDecision['action'],
    reason: string,
    run: RotationRun
  ): TickDecision {
    const ok = run.status === 'completed' || run.status === 'cancelled'
    return { ...decision, action: ok ? action : 'failed', reason, run }
  }
}
