/*
|--------------------------------------------------------------------------
| Dual control: the on/off switch and its visibility
|--------------------------------------------------------------------------
|
| config/governance.ts `dualControl` (DUAL_CONTROL, default on). Off is for
| development only; it is never silent: the server warns once at boot,
| `GET /rotations/status` and the detailed `/health/ready` say so,
| `rewrap_dual_control_enabled` is 0, and every change of the setting
| (against the last one the audit trail recorded; none recorded counts as
| the default, on) is appended to the audit trail at boot.
|
*/
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import type { ApplicationService } from '@adonisjs/core/types'
import type { GovernanceConfig } from '#app/governance_config'
import { safeMessage } from '#app/errors'
import { APPEND_LOCK, AuditService } from '#services/audit_service'

/** The setting as status, health and the audit trail show it. */
export type DualControlSetting = 'on' | 'off'

/** The audit act recording a change of the setting. */
export const DUAL_CONTROL_ACT = 'governance.dual_control'

/** What the boot warning, status and health say while dual control is off. */
export const DUAL_CONTROL_OFF_WARNING =
  'Dual control is OFF (DUAL_CONTROL=off): master-key acts run without approvals. ' +
  'For development only: set DUAL_CONTROL=on (or remove it; on is the default) and restart.'

/**
 * Reads the switch and records its changes.
 */
@inject()
export class DualControl {
  constructor(private audit: AuditService) {}

  /** Whether governed acts need approvals. */
  get enabled(): boolean {
    return app.config.get<GovernanceConfig>('governance').dualControl !== false
  }

  /** `on` or `off`. */
  get setting(): DualControlSetting {
    return this.enabled ? 'on' : 'off'
  }

  /**
   * Appends a `governance.dual_control` record when the setting differs
   * from the last recorded one (none recorded counts as `on`); answers the
   * previous setting and whether a record was written. Concurrent boots
   * record a change once (the audit chain's append lock).
   */
  async recordIfChanged(
    actor: string
  ): Promise<{ recorded: boolean; previous: DualControlSetting }> {
    const setting = this.setting
    return db.transaction(async (trx) => {
      await trx.rawQuery(APPEND_LOCK)
      const { rows } = await trx.rawQuery(
        `SELECT record FROM audit_events
          WHERE (record::json -> 'a' ->> 'act') = ? ORDER BY seq DESC LIMIT 1`,
        [DUAL_CONTROL_ACT]
      )
      const last = rows[0] ? JSON.parse(rows[0].record).a.outcome : undefined
      const previous: DualControlSetting = last === 'off' ? 'off' : 'on'
      if (previous === setting) return { recorded: false, previous }
      await this.audit.append(trx, {
        act: DUAL_CONTROL_ACT,
        actor,
        outcome: setting,
        data: { setting, previous, source: 'DUAL_CONTROL' },
      })
      return { recorded: true, previous }
    })
  }
}

let announced = false

/**
 * At server boot: one warning when dual control is off, and the audit
 * record of a change of the setting. A failure to record is logged (with
 * its code) and does not stop the boot.
 */
export async function announceDualControl(application: ApplicationService): Promise<void> {
  const logger = await application.container.make('logger')
  const dualControl = await application.container.make(DualControl)
  if (!dualControl.enabled && !announced) {
    announced = true
    logger.warn({ dualControl: 'off' }, DUAL_CONTROL_OFF_WARNING)
  }
  try {
    const { recorded, previous } = await dualControl.recordIfChanged('config:DUAL_CONTROL')
    const setting = dualControl.setting
    if (recorded) {
      logger.info(
        { dualControl: setting, previous, recorded },
        `Dual control changed from ${previous} to ${setting}: recorded in the audit trail`
      )
    } else {
      logger.debug({ dualControl: setting, recorded }, `Dual control ${setting}, as last recorded`)
    }
  } catch (error) {
    logger.error(
      { dualControl: dualControl.setting, recorded: false },
      `Could not record the dual-control setting in the audit trail (${safeMessage(error)})`
    )
  }
}
