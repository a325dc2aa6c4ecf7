/*
|--------------------------------------------------------------------------
| Audit service
|--------------------------------------------------------------------------
|
| Appends signed, hash-chained audit records (app/governance/audit_record)
| to `audit_events` inside the caller's transaction, so an act and its
| record commit or roll back together. Appends are serialised by a
| transaction-level advisory lock: seq = last + 1 and prev = last SAID
| never fork, whatever the number of processes. Reads the log for
| `GET /audit`, `audit:verify` and `audit:export`.
|
*/
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import env from '#start/env'
import db from '@adonisjs/lucid/services/db'
import type { TransactionClientContract } from '@adonisjs/lucid/types/database'
import { ready } from '#app/governance/signify'
import {
  createAuditRecord,
  type AuditApprovals,
  type AuditRecord,
} from '#app/governance/audit_record'
import type { SignedAuditRecord } from '#app/governance/audit_record'
import type { KelEntry } from '#app/governance/key_events'
import { Clock } from '#services/clock'
import {
  currentServiceKey,
  loadServiceKel,
  parseAuditSeed,
  serviceRotation,
  storeKelEntry,
} from '#services/audit_keys'

/** One act to record. `kek` goes into `data.kek`; `approvals`: what a governed act ran under. */
export type AuditEntry = {
  act: string
  actor: string
  outcome: string
  kek?: string
  data?: Record<string, unknown>
  approvals?: AuditApprovals | null
}

/** A stored record as `GET /audit` and the export show it. */
export type StoredAuditRecord = SignedAuditRecord & { seq: number }

/** The lock that serialises appends (transaction-level: released at commit / rollback). */
export const APPEND_LOCK = `SELECT pg_advisory_xact_lock(hashtextextended('rewrap:audit-chain', 0))`

/**
 * Writes and reads the audit trail.
 */
@inject()
export class AuditService {
  constructor(private clock: Clock) {}

  #seed(): Uint8Array {
    return parseAuditSeed(env.get('AUDIT_SIGNING_SEED')?.release())
  }

  /**
   * Appends the record of `entry` inside `trx` (signed by the service AID,
   * incepted on first use). Answers the signed record.
   */
  async append(trx: TransactionClientContract, entry: AuditEntry): Promise<SignedAuditRecord> {
    const seed = this.#seed()
    await ready()
    await trx.rawQuery(APPEND_LOCK)
    const key = await currentServiceKey(trx, seed)
    const { rows } = await trx.rawQuery('SELECT record FROM audit_events ORDER BY seq DESC LIMIT 1')
    const previous: AuditRecord | undefined = rows[0] ? JSON.parse(rows[0].record) : undefined
    // dt never goes backwards along the chain (verifyAuditChain checks it).
    const now = this.clock.now().getTime()
    const dt = new Date(Math.max(now, previous ? Date.parse(previous.a.dt) : 0)).toISOString()
    const data = entry.kek === undefined ? { ...entry.data } : { kek: entry.kek, ...entry.data }
    const signed = createAuditRecord({
      service: key.est,
      signers: [key.signer],
      previous,
      act: entry.act,
      actor: entry.actor,
      approvals: entry.approvals ?? null,
      outcome: entry.outcome,
      dt,
      data,
    })
    await trx.rawQuery(
      'INSERT INTO audit_events (seq, said, prev, record, signatures) VALUES (?, ?, ?, ?, ?)',
      [
        signed.record.a.seq,
        signed.record.d,
        signed.record.a.prev,
        JSON.stringify(signed.record),
        JSON.stringify(signed.signature),
      ]
    )
    return signed
  }

  /**
   * The time the next record will carry: now, or the last record's `dt`
   * when the chain is ahead of this clock (records never go back in time).
   * The approval gate judges an act at this time, so the verifier, which
   * re-judges it at the record's `dt`, reaches the same verdict.
   */
  async chainTime(client: Pick<TransactionClientContract, 'rawQuery'>): Promise<Date> {
    const { rows } = await client.rawQuery(
      'SELECT record FROM audit_events ORDER BY seq DESC LIMIT 1'
    )
    const last: AuditRecord | undefined = rows[0] ? JSON.parse(rows[0].record) : undefined
    const now = this.clock.now().getTime()
    return new Date(Math.max(now, last ? Date.parse(last.a.dt) : 0))
  }

  /** Runs `work` and appends the record `entry(result)` describes in the same transaction. */
  async withRecord<T>(
    work: (trx: TransactionClientContract) => Promise<T>,
    entry: (result: T) => AuditEntry | null
  ): Promise<T> {
    return db.transaction(async (trx) => {
      const result = await work(trx)
      const record = entry(result)
      if (record) await this.append(trx, record)
      return result
    })
  }

  /**
   * Rotates the service AID to its committed next key (pre-rotation) and
   * records the rotation in the chain, signed with the new key.
   */
  async rotateKey(actor: string): Promise<{ aid: string; sn: number }> {
    const seed = this.#seed()
    await ready()
    return db.transaction(async (trx) => {
      await trx.rawQuery(APPEND_LOCK)
      const key = await currentServiceKey(trx, seed)
      const rotation = await serviceRotation(seed, key.state)
      await storeKelEntry(trx, rotation)
      const sn = key.state.sn + 1
      await this.append(trx, {
        act: 'audit.key_rotated',
        actor,
        outcome: 'done',
        data: { aid: key.state.aid, sn, event: String(rotation.event.d) },
      })
      return { aid: key.state.aid, sn }
    })
  }

  /** Records with seq > `after`, oldest first, at most `limit`. */
  async page(after: number, limit: number): Promise<StoredAuditRecord[]> {
    const { rows } = await db.rawQuery(
      'SELECT seq, record, signatures FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?',
      [after, limit]
    )
    return rows.map(toStored)
  }

  /** The newest `limit` records, newest first. */
  async latest(limit: number): Promise<StoredAuditRecord[]> {
    const { rows } = await db.rawQuery(
      'SELECT seq, record, signatures FROM audit_events ORDER BY seq DESC LIMIT ?',
      [limit]
    )
    return rows.map(toStored)
  }

  /** Every record (as stored, in seq order) and the service KEL. */
  async all(): Promise<{ records: StoredAuditRecord[]; serviceKel: KelEntry[] }> {
    const { rows } = await db.rawQuery(
      'SELECT seq, record, signatures FROM audit_events ORDER BY seq'
    )
    return { records: rows.map(toStored), serviceKel: await loadServiceKel(db) }
  }
}

function toStored(row: { seq: string; record: string; signatures: string }): StoredAuditRecord {
  return {
    seq: Number(row.seq),
    record: JSON.parse(row.record),
    signature: JSON.parse(row.signatures),
  }
}

/**
 * Runs `work` and its audit record in one transaction, resolving the
 * AuditService from the container (for stores built with `new`).
 */
export async function withAuditRecord<T>(
  work: (trx: TransactionClientContract) => Promise<T>,
  entry: (result: T) => AuditEntry | null
): Promise<T> {
  const audit = await app.container.make(AuditService)
  return audit.withRecord(work, entry)
}

/** The run fields an audit record of a run carries. */
type RunLike = {
  id: string
  status: string
  kekName?: string
  fromKek?: string
  toKek?: string
  targetVersion?: number | null
  requestedBy?: string | null
  trigger?: string
  cancelledBy?: string | null
  lastError?: string | null
  rewrapped?: number
  reencrypted?: number
  skipped?: number
  failed?: number
}

const RUN_ACTS: Record<string, string> = {
  running: 'resumed',
  completed: 'finished',
  completed_with_errors: 'finished',
  failed: 'failed',
  cancelled: 'cancelled',
}

/**
 * The audit entry of a run's status change (`fields` as written; `created`
 * marks the new run): `<kind>.started|resumed|finished|failed|cancelled`,
 * or null when `fields` changes no status.
 */
export function runAuditEntry(
  kind: 'rotation' | 'reencrypt',
  run: RunLike,
  fields: Record<string, unknown>
): AuditEntry | null {
  if (typeof fields.status !== 'string') return null
  const verb = fields.created ? 'started' : RUN_ACTS[fields.status]
  if (!verb) return null
  const actor =
    (fields.status === 'cancelled' ? run.cancelledBy : null) ??
    run.requestedBy ??
    run.trigger ??
    'cli'
  const data: Record<string, unknown> = { run: run.id, status: run.status }
  if (run.fromKek !== undefined) Object.assign(data, { from: run.fromKek, to: run.toKek })
  if (run.targetVersion !== undefined) data.target_version = run.targetVersion
  for (const key of ['rewrapped', 'reencrypted', 'skipped', 'failed'] as const) {
    if (run[key] !== undefined) data[key] = run[key]
  }
  if (fields.status === 'failed' && run.lastError) data.error = run.lastError
  return {
    act: `${kind}.${verb}`,
    actor,
    outcome: verb === 'finished' ? run.status : verb,
    kek: run.kekName ?? run.fromKek,
    data,
  }
}
