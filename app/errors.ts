/*
|--------------------------------------------------------------------------
| Rewrap errors
|--------------------------------------------------------------------------
|
| Stable codes, one HTTP status each. Messages never carry secrets (no DEK,
| plaintext, token or key material): only names, versions, ids and counts.
|
*/
import { createError } from '@adonisjs/core/exceptions'

/** The named KEK does not exist in the KMS. */
export const E_KEK_NOT_FOUND = createError<[name: string]>(
  'KEK "%s" does not exist',
  'E_KEK_NOT_FOUND',
  404
)

/** A KEK of that name already exists. */
export const E_KEK_EXISTS = createError<[name: string]>(
  'KEK "%s" already exists',
  'E_KEK_EXISTS',
  409
)

/** The entry with that id does not exist. */
export const E_ENTRY_NOT_FOUND = createError<[id: string]>(
  'Entry %s does not exist',
  'E_ENTRY_NOT_FOUND',
  404
)

/** A wrapped DEK, a Vault ciphertext or an envelope failed to parse or authenticate. */
export const E_CIPHERTEXT_INVALID = createError<[detail: string]>(
  'Ciphertext is invalid: %s',
  'E_CIPHERTEXT_INVALID',
  422
)

/** The KMS could not be reached (network, timeout, 5xx, 429 after retries). */
export const E_KMS_UNAVAILABLE = createError<[detail: string]>(
  'KMS unavailable: %s',
  'E_KMS_UNAVAILABLE',
  503
)

/** The KMS refused the operation (permission denied, bad token). */
export const E_KMS_DENIED = createError<[detail: string]>(
  'KMS denied the request: %s',
  'E_KMS_DENIED',
  502
)

/** The KMS rejected the request as invalid (4xx other than 403/404/429). */
export const E_KMS_REJECTED = createError<[detail: string]>(
  'KMS rejected the request: %s',
  'E_KMS_REJECTED',
  422
)

/** A key version is below min_decryption_version (retired) or was trimmed. */
export const E_KEY_VERSION_DISALLOWED = createError<[detail: string]>(
  'Key version not allowed: %s',
  'E_KEY_VERSION_DISALLOWED',
  422
)

/** Another rotation of the same KEK is running. */
export const E_ROTATION_IN_PROGRESS = createError<[name: string]>(
  'A rotation of KEK "%s" is already in progress',
  'E_ROTATION_IN_PROGRESS',
  409
)

/** The token is valid but lacks the ability the route needs. */
export const E_FORBIDDEN = createError<[ability: string]>(
  'The access token lacks the "%s" ability',
  'E_FORBIDDEN',
  403
)

/** A misconfiguration detected at runtime (missing root key, bad driver name). */
export const E_KMS_CONFIG = createError<[detail: string]>(
  'KMS misconfigured: %s',
  'E_KMS_CONFIG',
  500
)

/** An unfinished run of the KEK exists: resume it instead of rotating again. */
export const E_ROTATION_UNFINISHED = createError<[name: string, id: string]>(
  'KEK "%s" has an unfinished rotation run (#%s): resume it with --resume (the KEK is not rotated again)',
  'E_ROTATION_UNFINISHED',
  409
)

/** --resume was asked but there is nothing to resume. */
export const E_NO_ROTATION_TO_RESUME = createError<[name: string]>(
  'KEK "%s" has no unfinished rotation run to resume',
  'E_NO_ROTATION_TO_RESUME',
  409
)

/** The rotation run does not exist. */
export const E_ROTATION_NOT_FOUND = createError<[id: string]>(
  'Rotation run %s does not exist',
  'E_ROTATION_NOT_FOUND',
  404
)

/** Invalid rotation options (target version beyond latest, …). */
export const E_ROTATION_INVALID = createError<[detail: string]>(
  'Invalid rotation request: %s',
  'E_ROTATION_INVALID',
  422
)

/** kek:retire refused (soak period not over, rows below the latest version, run unfinished). */
export const E_RETIRE_REFUSED = createError<[detail: string]>(
  'Retire refused: %s',
  'E_RETIRE_REFUSED',
  409
)

/** kek:unretire refused (version trimmed, above the current minimum, …). */
export const E_UNRETIRE_REFUSED = createError<[detail: string]>(
  'Unretire refused: %s',
  'E_UNRETIRE_REFUSED',
  409
)

/** kek:trim refused (nothing retired, retention period not over, rows still need the versions). */
export const E_TRIM_REFUSED = createError<[detail: string]>(
  'Trim refused: %s',
  'E_TRIM_REFUSED',
  409
)

/** reencrypt refused (same KEK, unknown target, another run of the KEK in progress). */
export const E_REENCRYPT_REFUSED = createError<[detail: string]>(
  'Re-encrypt refused: %s',
  'E_REENCRYPT_REFUSED',
  409
)

/*
|--------------------------------------------------------------------------
| Governance: dual control, role credentials, audit trail
|--------------------------------------------------------------------------
|
| Codes of the pure checks in app/governance (their verdicts carry the same
| codes; `governanceError` in app/governance/errors.ts turns a verdict into
| one of these). Messages name SAIDs, AIDs, roles and fields, never keys,
| seeds or passphrases.
|
*/

/** A governed act was asked for without an approval. */
export const E_APPROVAL_REQUIRED = createError<[action: string]>(
  'Dual control: "%s" needs an approved request (--approval <said>)',
  'E_APPROVAL_REQUIRED',
  403
)

/** The approvals do not cover every required role; the message names the missing roles. */
export const E_APPROVAL_INSUFFICIENT = createError<[detail: string]>(
  'Approval insufficient: %s',
  'E_APPROVAL_INSUFFICIENT',
  403
)

/** The approval request has expired. */
export const E_APPROVAL_EXPIRED = createError<[detail: string]>(
  'Approval expired: %s',
  'E_APPROVAL_EXPIRED',
  403
)

/** The approval request was already consumed by an act. */
export const E_APPROVAL_USED = createError<[said: string]>(
  'Approval %s was already used',
  'E_APPROVAL_USED',
  409
)

/** The approval request does not match the act (action, KEK, parameters) or its SAID. */
export const E_APPROVAL_MISMATCH = createError<[detail: string]>(
  'Approval does not match: %s',
  'E_APPROVAL_MISMATCH',
  403
)

/** A signer or issuer is not a registered AID. */
export const E_APPROVER_UNKNOWN = createError<[detail: string]>(
  'Unknown approver: %s',
  'E_APPROVER_UNKNOWN',
  403
)

/** A role credential the approval relies on was revoked. */
export const E_CREDENTIAL_REVOKED = createError<[detail: string]>(
  'Credential revoked: %s',
  'E_CREDENTIAL_REVOKED',
  403
)

/** A role credential is malformed or of another schema. */
export const E_CREDENTIAL_INVALID = createError<[detail: string]>(
  'Invalid credential: %s',
  'E_CREDENTIAL_INVALID',
  422
)

/** A signature does not verify against the signer's key state. */
export const E_SIGNATURE_INVALID = createError<[detail: string]>(
  'Invalid signature: %s',
  'E_SIGNATURE_INVALID',
  403
)

/** The same AID signed twice, or one AID was asked to fill two roles. */
export const E_SAME_APPROVER = createError<[detail: string]>(
  'Same approver: %s',
  'E_SAME_APPROVER',
  403
)

/** A document does not match its SAID. */
export const E_SAID_INVALID = createError<[detail: string]>(
  'SAID mismatch: %s',
  'E_SAID_INVALID',
  422
)

/** A KERI key event (inception, rotation) is refused. */
export const E_KEY_EVENT_INVALID = createError<[detail: string]>(
  'Key event refused: %s',
  'E_KEY_EVENT_INVALID',
  422
)

/** The audit chain is broken; the message names the first broken record. */
export const E_AUDIT_CHAIN_BROKEN = createError<[detail: string]>(
  'Audit chain broken: %s',
  'E_AUDIT_CHAIN_BROKEN',
  422
)

/** The keystore passphrase is wrong (or the keystore was altered). */
export const E_KEYSTORE_PASSPHRASE = createError(
  'Keystore passphrase is wrong, or the keystore file was altered',
  'E_KEYSTORE_PASSPHRASE',
  401
)

/** The keystore file is not a valid keystore. */
export const E_KEYSTORE_INVALID = createError<[detail: string]>(
  'Invalid keystore: %s',
  'E_KEYSTORE_INVALID',
  422
)
