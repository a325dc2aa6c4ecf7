/*
|--------------------------------------------------------------------------
| Rewrap errors
|--------------------------------------------------------------------------
|
| Stable codes, one HTTP status each. Messages never carry secrets (no DEK,
| plaintext, token or key material): only names, versions, ids and counts.
|
| Longer than ~300 lines on purpose: it is the one vocabulary of the app
| (as Lucid keeps every E_* in one file), a list of one-statement
| definitions plus errorCode() and safeMessage().
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

/*
| KMS errors carry a FIXED message per code: what a KMS answers (Vault's error
| text can name its storage host and user) and transport errors (addresses)
| never reach a client, a run row or a CLI line. The detail travels as the
| error's `cause` (non-enumerable) and is logged once at the KMS boundary
| (app/kms/instrumented_driver.ts). Create them with `kmsError()`.
*/

/** The KMS could not be reached (network, timeout, 5xx, 429 after retries). */
export const E_KMS_UNAVAILABLE = createError(
  'The KMS is unavailable; try again later',
  'E_KMS_UNAVAILABLE',
  503
)

/** The KMS refused the operation (permission denied, bad token). */
export const E_KMS_DENIED = createError(
  "The KMS denied the request (permissions of the app's KMS identity)",
  'E_KMS_DENIED',
  502
)

/** The KMS rejected the request as invalid (4xx other than 403/404/429). */
export const E_KMS_REJECTED = createError('The KMS rejected the request', 'E_KMS_REJECTED', 422)

/** A key version is below min_decryption_version (retired) or was trimmed. */
export const E_KEY_VERSION_DISALLOWED = createError(
  'The key version is not allowed (retired or trimmed)',
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

/** The console's sign-in refused the pasted token (unknown, expired or without rotation:read). */
export const E_CONSOLE_SIGN_IN_REFUSED = createError(
  'That token is not valid, has expired, or lacks the "rotation:read" ability',
  'E_CONSOLE_SIGN_IN_REFUSED',
  401
)

/** The console serves no such file. */
export const E_CONSOLE_ASSET_NOT_FOUND = createError<[file: string]>(
  'No console asset "%s"',
  'E_CONSOLE_ASSET_NOT_FOUND',
  404
)

/** A misconfiguration detected at runtime (missing root key, unknown driver name). */
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

/** The re-encrypt run does not exist. */
export const E_REENCRYPT_NOT_FOUND = createError<[id: string]>(
  'Re-encrypt run %s does not exist',
  'E_REENCRYPT_NOT_FOUND',
  404
)

/** A config file (config/rewrap.ts, config/kms.ts) is invalid: stops the boot, naming the key. */
export const E_CONFIG_INVALID = createError<[file: string, detail: string]>(
  'Invalid %s: %s',
  'E_CONFIG_INVALID',
  500
)

/** An operation (a KMS probe, a count) did not answer in time. */
export const E_TIMEOUT = createError<[what: string, ms: number]>(
  '%s timed out after %d ms',
  'E_TIMEOUT',
  503
)

/** A stable error code: `E_` and capitals, digits, underscores. */
const CODE_PATTERN = /^E_[A-Z0-9_]+$/

/**
 * The stable code of any thrown value: its own `E_*` code (Rewrap's, the
 * framework's), else `E_INTERNAL`. Never derived from the message, which
 * could carry data.
 */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && CODE_PATTERN.test(code) ? code : 'E_INTERNAL'
}

/**
 * One line fit for a run row, a status report, a log or a CLI: `CODE:
 * message` for `E_*` errors (their messages carry no secrets; KMS errors
 * have a fixed one), else `E_INTERNAL` with the error's system code or
 * class (`E_INTERNAL (ECONNREFUSED)`), never its message.
 */
export function safeMessage(error: unknown): string {
  const code = errorCode(error)
  const err = (error ?? {}) as { code?: unknown; name?: unknown; message?: unknown }
  if (code !== 'E_INTERNAL' || err.code === 'E_INTERNAL') {
    return typeof err.message === 'string' && err.message ? `${code}: ${err.message}` : code
  }
  const kind =
    typeof err.code === 'string' ? err.code : typeof err.name === 'string' ? err.name : ''
  return kind ? `E_INTERNAL (${kind})` : 'E_INTERNAL'
}

/** The KMS answered with a redirect Rewrap does not follow (another origin, too many hops). */
export const E_KMS_REDIRECT = createError(
  'The KMS answered with a redirect off its configured address; not followed',
  'E_KMS_REDIRECT',
  502
)

/*
| Concurrent writers (compare-and-swap on a row).
*/

/** A write lost its compare-and-swap to concurrent writers every time it retried. */
export const E_ENTRY_CONFLICT = createError<[id: string]>(
  'Entry %s was changed by concurrent writers while it was being written; retry the request',
  'E_ENTRY_CONFLICT',
  409
)

/*
|--------------------------------------------------------------------------
| HTTP hardening: request shape, body parsing, authentication throttling
|--------------------------------------------------------------------------
*/

/** A write route got a body that is not `application/json` (or in an unknown encoding). */
export const E_UNSUPPORTED_MEDIA_TYPE = createError<[detail: string]>(
  'Unsupported request body: %s',
  'E_UNSUPPORTED_MEDIA_TYPE',
  415
)

/** The body is not valid JSON, not an object or array, too deeply nested, or badly encoded. */
export const E_INVALID_JSON = createError<[detail: string]>(
  'Request body is not valid JSON: %s',
  'E_INVALID_JSON',
  400
)

/** The body (after decompression) is over the configured limit. */
export const E_REQUEST_ENTITY_TOO_LARGE = createError<[limit: string]>(
  'Request body is over %s',
  'E_REQUEST_ENTITY_TOO_LARGE',
  413
)

/** Too many failed authentications from this address or for this token id. */
export const E_TOO_MANY_REQUESTS = createError<[seconds: number]>(
  'Too many failed authentication attempts: retry in %s seconds',
  'E_TOO_MANY_REQUESTS',
  429
)

/** No access token with that id. */
export const E_TOKEN_NOT_FOUND = createError<[id: string]>(
  'Access token %s does not exist',
  'E_TOKEN_NOT_FOUND',
  404
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

/** No approval request with that SAID. */
export const E_APPROVAL_NOT_FOUND = createError<[said: string]>(
  'Approval request %s does not exist',
  'E_APPROVAL_NOT_FOUND',
  404
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

/*
|--------------------------------------------------------------------------
| azure-keyvault driver
|--------------------------------------------------------------------------
*/

/**
 * kek:trim on a KMS that cannot delete single key versions (Azure Key
 * Vault deletes a key whole): the retired versions stay, disabled.
 */
export const E_TRIM_UNSUPPORTED = createError<[name: string, kms: string]>(
  'Trim is not possible for KEK "%s": %s cannot delete single key versions; retired versions stay disabled (see the runbook)',
  'E_TRIM_UNSUPPORTED',
  409
)

/**
 * A KEK name that is valid in Rewrap but not as a key name of its KMS
 * (Azure Key Vault: letters, digits and dashes only). Refused before any
 * call, with the rule, instead of the KMS's generic refusal.
 */
export const E_KEK_NAME_UNSUPPORTED = createError<[name: string, kms: string, rule: string]>(
  'KEK "%s" cannot be a key name in %s: %s',
  'E_KEK_NAME_UNSUPPORTED',
  422
)

/*
|--------------------------------------------------------------------------
| Governance: approvers and role credentials (registry)
|--------------------------------------------------------------------------
*/

/** That AID is already registered with another inception or authority flag (first seen wins). */
export const E_APPROVER_EXISTS = createError<[aid: string]>(
  'AID %s is already registered (an AID keeps the key event log it was first registered with)',
  'E_APPROVER_EXISTS',
  409
)

/** The issuer of a credential or revocation is registered but not a role authority. */
export const E_APPROVER_NOT_AUTHORITY = createError<[aid: string]>(
  'AID %s is not a role authority (register it with --authority)',
  'E_APPROVER_NOT_AUTHORITY',
  403
)

/** A role credential grants a role config/governance.ts does not list. */
export const E_ROLE_UNKNOWN = createError<[role: string, roles: string]>(
  'Unknown role "%s" (valid: %s)',
  'E_ROLE_UNKNOWN',
  422
)

/** No registered credential with that SAID. */
export const E_CREDENTIAL_NOT_FOUND = createError<[said: string]>(
  'Credential %s is not registered',
  'E_CREDENTIAL_NOT_FOUND',
  404
)

/** A governance file or body is not what the command or route reads (not JSON, wrong shape). */
export const E_GOVERNANCE_INPUT = createError<[detail: string]>(
  'Invalid governance document: %s',
  'E_GOVERNANCE_INPUT',
  422
)

/*
|--------------------------------------------------------------------------
| Audit trail (the service's signing AID)
|--------------------------------------------------------------------------
*/

/** AUDIT_SIGNING_SEED is missing or malformed: no act may run without its audit record. */
export const E_AUDIT_NOT_CONFIGURED = createError<[detail: string]>(
  'Audit trail not configured: %s',
  'E_AUDIT_NOT_CONFIGURED',
  503
)

/** The stored service key event log does not match AUDIT_SIGNING_SEED. */
export const E_AUDIT_KEY_MISMATCH = createError<[detail: string]>(
  'Audit signing key mismatch: %s',
  'E_AUDIT_KEY_MISMATCH',
  503
)

/*
|--------------------------------------------------------------------------
| Database outages and lost locks (background runs)
|--------------------------------------------------------------------------
*/

/** PostgreSQL could not be reached for longer than the run's outage bound. */
export const E_DATABASE_UNAVAILABLE = createError(
  'The database is unavailable; the run is resumable once it is back (--resume)',
  'E_DATABASE_UNAVAILABLE',
  503
)

/** A run's advisory lock was lost and could not be taken back: the run stopped. */
export const E_LOCK_LOST = createError(
  'The run lost its lock (its database session ended); it stopped and is resumable',
  'E_LOCK_LOST',
  503
)

/** The request URL cannot be decoded (malformed percent-encoding, e.g. `%ED%A0%80`). */
export const E_MALFORMED_URL = createError(
  'The request URL is malformed (invalid percent-encoding)',
  'E_MALFORMED_URL',
  400
)
