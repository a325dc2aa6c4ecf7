/*
|--------------------------------------------------------------------------
| Approver registry: AIDs and their key event logs
|--------------------------------------------------------------------------
|
| Registers an approver (or a role authority) from its signed inception
| event and accepts its rotations, with the pure KERI checks of
| app/governance. First seen wins: an AID registered once keeps its KEL;
| a rotation is accepted only on top of it and only to the committed next
| keys. Events are stored as the exact bytes that were verified. Only
| public material reaches this service: events, keys, digests, signatures.
|
*/
import { inject } from '@adonisjs/core'
import db from '@adonisjs/lucid/services/db'
import type { TransactionClientContract } from '@adonisjs/lucid/types/database'
import { ready } from '#app/governance/signify'
import { E_APPROVER_EXISTS, E_APPROVER_UNKNOWN, E_KEY_EVENT_INVALID } from '#app/errors'
import { CesrStreamError, parseStream } from '#app/governance/cesr_stream'
import { governanceError } from '#app/governance/errors'
import {
  replayKel,
  verifyInception,
  verifyRotation,
  type KelEntry,
} from '#app/governance/key_events'
import type { KeyState } from '#app/governance/key_state'
import { serialize } from '#app/governance/said'
import { AuditService } from '#services/audit_service'
import { RegistryGate, type RegistryChange } from '#services/registry_gate'

/** A registered AID as the registry shows it (public data only). */
export interface ApproverView {
  aid: string
  name: string
  authority: boolean
  /** Sequence number of the last accepted establishment event. */
  sn: number
  /** Current signing keys (public, qb64). */
  keys: string[]
  createdAt: string
}

/** Input of {@link ApproverService.register}. */
export interface RegisterApproverInput {
  /** A label for people; not part of the signed event. */
  name: string
  /** The signed inception as one KERI message (CESR text: event JSON, `-A##`, signatures). */
  inception: string
  /** Marks the AID a role authority (it may issue role credentials). */
  authority?: boolean
}

/** Who changes the registry, and under which approval (docs/governance.md). */
export interface RegistryActor {
  /** Token name, OS user, `tests`. */
  actor?: string
  /** SAID of the approval request the change runs under (needed once governed). */
  approval?: string
}

/** Parses exactly one signed KERI message; a parse failure is `E_KEY_EVENT_INVALID`. */
export function parseOneMessage(text: string): KelEntry {
  let entries: KelEntry[]
  try {
    entries = parseStream(text)
  } catch (error) {
    if (error instanceof CesrStreamError) throw new E_KEY_EVENT_INVALID([error.message])
    throw error
  }
  if (entries.length !== 1) {
    throw new E_KEY_EVENT_INVALID([`expected one signed event, got ${entries.length}`])
  }
  return entries[0]
}

type ApproverRow = { aid: string; name: string; authority: boolean; created_at: Date }
type EventRow = { sn: number; event: string; signatures: string[] }

@inject()
export class ApproverService {
  constructor(
    private audit: AuditService,
    private gate: RegistryGate
  ) {}

  /**
   * Registers an AID from its signed inception: SAID, self-signatures,
   * transferable keys with a next-key commitment. Registering the same
   * inception again with the same flag is a no-op (`created: false`);
   * anything else for a known AID is `E_APPROVER_EXISTS`. A new AID is a
   * governed change (`approver`, params `aid` and `authority=true` for an
   * authority) once two approvers hold roles; recorded `approver.register`.
   */
  async register(
    input: RegisterApproverInput,
    by: RegistryActor = {}
  ): Promise<ApproverView & { created: boolean }> {
    await ready()
    const { event, sigs } = parseOneMessage(input.inception)
    const verdict = verifyInception(event, sigs)
    if (!verdict.ok) throw governanceError(verdict)
    const aid = verdict.state.aid
    const text = new TextDecoder().decode(serialize(event).raw)
    const authority = input.authority === true
    const change: RegistryChange = {
      action: 'approver',
      params: authority ? { aid, authority: 'true' } : { aid },
      actor: by.actor ?? 'cli',
      approval: by.approval,
    }
    if (!(await this.#known(aid))) await this.gate.check(change)
    return db.transaction(async (trx) => {
      const inserted = await trx.rawQuery(
        `INSERT INTO approvers (aid, name, authority) VALUES (?, ?, ?)
         ON CONFLICT (aid) DO NOTHING RETURNING aid`,
        [aid, input.name, authority]
      )
      if (inserted.rows.length === 0) {
        const existing = await this.#row(trx, aid)
        const first = await trx.rawQuery(`SELECT event FROM key_events WHERE aid = ? AND sn = 0`, [
          aid,
        ])
        if (existing?.authority !== authority || first.rows[0]?.event !== text) {
          throw new E_APPROVER_EXISTS([aid])
        }
        return { ...(await this.#view(trx, existing)), created: false }
      }
      await trx.rawQuery(
        `INSERT INTO key_events (aid, sn, said, event, signatures) VALUES (?, 0, ?, ?, ?)`,
        [aid, aid, text, sigs]
      )
      // Audit: the approval consumed and the record in the transaction of the change.
      const governed = await this.gate.consume(trx, change, `approver.register of ${aid}`)
      await this.audit.append(trx, {
        act: 'approver.register',
        actor: change.actor,
        outcome: 'done',
        data: { aid, name: input.name, authority, inception: aid, ...governed.data },
        approvals: governed.approvals,
      })
      return { ...(await this.#view(trx, (await this.#row(trx, aid))!)), created: true }
    })
  }

  /**
   * Accepts a signed rotation event of a registered AID when it follows
   * the stored KEL (sn, prior SAID) and rotates to the committed next keys.
   * Concurrent rotations of one AID are serialized (row lock). Not governed
   * (the holder's own act, proven by pre-rotation); recorded `approver.rotate`.
   */
  async rotate(message: string, by: Pick<RegistryActor, 'actor'> = {}): Promise<ApproverView> {
    await ready()
    const { event, sigs } = parseOneMessage(message)
    const aid = typeof event.i === 'string' ? event.i : ''
    return db.transaction(async (trx) => {
      const locked = await trx.rawQuery(`SELECT aid FROM approvers WHERE aid = ? FOR UPDATE`, [aid])
      if (locked.rows.length === 0) throw new E_APPROVER_UNKNOWN([`no registered AID ${aid}`])
      const prior = await this.#replay(trx, aid)
      const verdict = verifyRotation(prior, event, sigs)
      if (!verdict.ok) throw governanceError(verdict)
      await trx.rawQuery(
        `INSERT INTO key_events (aid, sn, said, event, signatures) VALUES (?, ?, ?, ?, ?)`,
        [aid, verdict.state.sn, verdict.state.lastSaid, this.#text(event), sigs]
      )
      await this.audit.append(trx, {
        act: 'approver.rotate',
        actor: by.actor ?? 'cli',
        outcome: 'done',
        data: { aid, sn: verdict.state.sn, event: verdict.state.lastSaid },
      })
      return this.#view(trx, (await this.#row(trx, aid))!)
    })
  }

  /** The key state of a registered AID, replayed from its stored KEL (`E_APPROVER_UNKNOWN`). */
  async keyState(aid: string): Promise<KeyState> {
    await ready()
    return this.#replay(db, aid)
  }

  /** The registered AID or `E_APPROVER_UNKNOWN`. */
  async find(aid: string): Promise<ApproverView> {
    const row = await this.#row(db, aid)
    if (!row) throw new E_APPROVER_UNKNOWN([`no registered AID ${aid}`])
    return this.#view(db, row)
  }

  /** Every registered AID, oldest first. */
  async list(): Promise<ApproverView[]> {
    const { rows } = await db.rawQuery<{ rows: ApproverRow[] }>(
      `SELECT aid, name, authority, created_at FROM approvers ORDER BY created_at, aid`
    )
    const views: ApproverView[] = []
    for (const row of rows) views.push(await this.#view(db, row))
    return views
  }

  async #known(aid: string): Promise<boolean> {
    return (await this.#row(db, aid)) !== undefined
  }

  #text(event: KelEntry['event']): string {
    return new TextDecoder().decode(serialize(event).raw)
  }

  async #row(client: Queryable, aid: string): Promise<ApproverRow | undefined> {
    const { rows } = await client.rawQuery(
      `SELECT aid, name, authority, created_at FROM approvers WHERE aid = ?`,
      [aid]
    )
    return rows[0]
  }

  async #replay(client: Queryable, aid: string): Promise<KeyState> {
    const { rows } = await client.rawQuery<{ rows: EventRow[] }>(
      `SELECT sn, event, signatures FROM key_events WHERE aid = ? ORDER BY sn`,
      [aid]
    )
    if (rows.length === 0) throw new E_APPROVER_UNKNOWN([`no registered AID ${aid}`])
    const replayed = replayKel(
      rows.map((row) => ({ event: JSON.parse(row.event), sigs: row.signatures }))
    )
    if (!replayed.ok) throw governanceError(replayed)
    return replayed.state
  }

  async #view(client: Queryable, row: ApproverRow): Promise<ApproverView> {
    await ready()
    const state = await this.#replay(client, row.aid)
    return {
      aid: row.aid,
      name: row.name,
      authority: row.authority,
      sn: state.sn,
      keys: state.keys,
      createdAt: new Date(row.created_at).toISOString(),
    }
  }
}

type Queryable = Pick<TransactionClientContract, 'rawQuery'>
