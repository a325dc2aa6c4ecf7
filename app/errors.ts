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
