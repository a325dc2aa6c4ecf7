import vine from '@vinejs/vine'
import { approvalSaidRule } from '#validators/approval'

/**
 * POST /approvers body and the file approver:register reads: `{ name,
 * inception, authority?, approval? }`, the inception being the signed KERI
 * message (CESR text) approver:init wrote; `approval` the SAID of the
 * approved request once the registry is governed. Other fields (`aid`) are ignored.
 */
export const registerApproverValidator = vine.compile(
  vine.object({
    name: vine.string().trim().minLength(1).maxLength(200),
    inception: vine.string().minLength(1).maxLength(16_384),
    authority: vine.boolean().optional(),
    approval: approvalSaidRule.clone().optional(),
  })
)

/** A SAID or AID: `E` + 43 Base64url characters. */
const SAID = /^E[A-Za-z0-9_-]{43}$/

/** A signed JSON document's parts; the governance checks decide the exact shape. */
const document = () => vine.object({}).allowUnknownProperties()

/**
 * POST /credentials body: the file credential:issue wrote,
 * `{ credential, signature }` (the ACDC-shaped credential and its issuer's
 * signature group), and `approval` once the registry is governed.
 */
export const registerCredentialValidator = vine.compile(
  vine.object({
    credential: document(),
    signature: document(),
    approval: approvalSaidRule.clone().optional(),
  })
)

/**
 * POST /credentials/:said/revocation body: a revocation signed by the
 * credential's issuer, `{ revocation, signature, approval? }` (credential:revoke --out).
 */
export const revokeCredentialValidator = vine.compile(
  vine.object({
    revocation: document(),
    signature: document(),
    approval: approvalSaidRule.clone().optional(),
  })
)

/** GET /credentials query: `?subject=<AID>` (one approver's credentials). */
export const listCredentialsValidator = vine.compile(
  vine.object({ subject: vine.string().regex(SAID).optional() })
)
