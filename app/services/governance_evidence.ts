/*
|--------------------------------------------------------------------------
| Governance evidence from the database
|--------------------------------------------------------------------------
|
| Loads what the pure approval checks weigh (app/governance/approvals.ts):
| every registered AID's key event log replayed to its key state, the role
| credentials and revocations as signed, the role authorities; and a
| stored approval request with its signature groups. Read inside the
| caller's transaction when one is given (the approval gate locks the
| request row first). Only public documents are read here.
|
*/
import db from '@adonisjs/lucid/services/db'
import type { TransactionClientContract } from '@adonisjs/lucid/types/database'
import { E_APPROVAL_NOT_FOUND } from '#app/errors'
import type { ApprovalRequest } from '#app/governance/approval_request'
import type { SignedCredential, SignedRevocation } from '#app/governance/credentials'
import { governanceError } from '#app/governance/errors'
import { replayKel, type KelEntry } from '#app/governance/key_events'
import type { KeyState } from '#app/governance/key_state'
import type { SignatureGroup } from '#app/governance/signatures'

/** A client that runs raw SQL (the `db` service or a transaction). */
export type Queryable = Pick<TransactionClientContract, 'rawQuery'>

/** What an approval is judged against. */
export interface GovernanceEvidence {
  keyEventLogs: Record<string, KelEntry[]>
  keyStates: Map<string, KeyState>
  credentials: SignedCredential[]
  revocations: SignedRevocation[]
  authorities: string[]
  /** People's labels of the AIDs (not signed; for status views). */
  names: Map<string, string>
}

/** A stored request, its signature groups and whether it was consumed. */
export interface StoredApproval {
  said: string
  request: ApprovalRequest
  /** The document as stored (the exact bytes whose SAID was checked). */
  text: string
  signatures: Array<{ group: SignatureGroup; signer: string; sn: number; signedAt: Date }>
  usedAt: Date | null
  usedBy: string | null
}

/** Every AID's KEL and key state, every credential and revocation, the authorities. */
export async function loadEvidence(client: Queryable = db): Promise<GovernanceEvidence> {
  const approvers = await client.rawQuery(`SELECT aid, name, authority FROM approvers`)
  const events = await client.rawQuery(
    `SELECT aid, event, signatures FROM key_events ORDER BY aid, sn`
  )
  const keyEventLogs: Record<string, KelEntry[]> = {}
  for (const row of events.rows as Array<{ aid: string; event: string; signatures: string[] }>) {
    ;(keyEventLogs[row.aid] ??= []).push({ event: JSON.parse(row.event), sigs: row.signatures })
  }
  const keyStates = new Map<string, KeyState>()
  for (const [aid, kel] of Object.entries(keyEventLogs)) {
    const replayed = replayKel(kel)
    if (!replayed.ok) throw governanceError(replayed)
    keyStates.set(aid, replayed.state)
  }
  const { rows } = await client.rawQuery(
    `SELECT document, signatures, revocation, revocation_signatures FROM credentials
      ORDER BY created_at, said`
  )
  const credentials: SignedCredential[] = []
  const revocations: SignedRevocation[] = []
  for (const row of rows as Array<Record<string, string | null>>) {
    credentials.push({
      credential: JSON.parse(row.document!),
      signature: JSON.parse(row.signatures!),
    })
    if (row.revocation) {
      revocations.push({
        revocation: JSON.parse(row.revocation),
        signature: JSON.parse(row.revocation_signatures!),
      })
    }
  }
  const list = approvers.rows as Array<{ aid: string; name: string; authority: boolean }>
  return {
    keyEventLogs,
    keyStates,
    credentials,
    revocations,
    authorities: list.filter((a) => a.authority).map((a) => a.aid),
    names: new Map(list.map((a) => [a.aid, a.name])),
  }
}

/**
 * A stored request and its signatures (`E_APPROVAL_NOT_FOUND`). With
 * `lock`, the request row is locked until the transaction ends.
 */
export async function loadApproval(
  client: Queryable,
  said: string,
  options: { lock?: boolean } = {}
): Promise<StoredApproval> {
  const { rows } = await client.rawQuery(
    `SELECT said, document, used_at, used_by FROM approval_requests WHERE said = ?${
      options.lock ? ' FOR UPDATE' : ''
    }`,
    [said]
  )
  if (!rows[0]) throw new E_APPROVAL_NOT_FOUND([said])
  const signed = await client.rawQuery(
    `SELECT signer, sn, signature, created_at FROM approval_signatures
      WHERE request_said = ? ORDER BY created_at, signer`,
    [said]
  )
  return {
    said: rows[0].said,
    request: JSON.parse(rows[0].document),
    text: rows[0].document,
    signatures: (signed.rows as Array<Record<string, any>>).map((row) => ({
      group: JSON.parse(row.signature),
      signer: row.signer,
      sn: row.sn,
      signedAt: new Date(row.created_at),
    })),
    usedAt: rows[0].used_at ? new Date(rows[0].used_at) : null,
    usedBy: rows[0].used_by,
  }
}
