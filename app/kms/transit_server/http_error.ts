/*
|--------------------------------------------------------------------------
| Transit HTTP errors
|--------------------------------------------------------------------------
|
| Rendered as Vault renders them: `{"errors":["…"]}`. Messages are fixed
| texts or engine messages: never a token, a plaintext or key material.
|
*/
import { KeyringError } from '#crypto/keyring'

/** An error answered as `{"errors": [...]}` with an HTTP status. */
export class TransitHttpError extends Error {
  constructor(
    public status: number,
    message: string,
    /** Messages in `errors`; `[message]` unless given (Vault's 404 on reads sends `[]`). */
    public errors: string[] = [message],
    public headers: Record<string, string> = {}
  ) {
    super(message)
  }
}

/** 400 with one message (Vault's logical.ErrInvalidRequest). */
export function badRequest(message: string) {
  return new TransitHttpError(400, message)
}

/**
 * Runs an engine call, turning a KeyringError into the HTTP error Vault would answer.
 */
export function engineCall<T>(fn: () => T): T {
  try {
    return fn()
  } catch (error) {
    throw toHttpError(error)
  }
}

/**
 * A KeyringError becomes a 4xx with its message; anything else is rethrown.
 */
export function toHttpError(error: unknown): unknown {
  if (error instanceof KeyringError) {
    const status = error.status >= 500 ? 500 : 400
    return new TransitHttpError(status, status === 500 ? 'internal error' : error.message)
  }
  return error
}
