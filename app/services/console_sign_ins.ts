import { createHash, randomBytes } from 'node:crypto'
import { inject } from '@adonisjs/core'
import db from '@adonisjs/lucid/services/db'
import { Clock } from '#services/clock'

/** The longest a console sign-in lasts, however active the browser. */
export const SIGN_IN_LIFETIME_MS = 12 * 60 * 60 * 1000

/** Source of random bytes (crypto.randomBytes outside tests). */
export type RandomBytes = (size: number) => Buffer

const TABLE = 'console_sign_ins'

/** The stored key of a handle: its SHA-256 (the handle itself is never stored). */
export function handleHash(handle: string): Buffer {
  return createHash('sha256').update(handle, 'utf8').digest()
}

/**
 * The console's sign-ins on the server. The session cookie names a random
 * handle; the handle's hash names a row holding the token's id and the
 * sign-in's end. Sign-out deletes the row: a cookie is worth nothing once
 * its sign-in has ended, whatever a browser or a copy still sends.
 */
@inject()
export class ConsoleSignIns {
  /** Random bytes for the handles; swapped in tests. */
  random: RandomBytes = randomBytes

  constructor(private clock: Clock) {}

  /**
   * Records a sign-in of `tokenId` and returns the handle the session keeps
   * (32 random bytes, base64url), or null when the token is gone (revoked
   * since it was verified). Ended sign-ins are swept on the way.
   */
  async start(tokenId: string): Promise<string | null> {
    const handle = this.random(32).toString('base64url')
    const now = this.clock.now()
    await db.from(TABLE).where('expires_at', '<=', now).delete()
    try {
      await db.table(TABLE).insert({
        handle_hash: handleHash(handle),
        token_id: Number(tokenId),
        signed_in_at: now,
        expires_at: new Date(now.getTime() + SIGN_IN_LIFETIME_MS),
      })
    } catch (error) {
      // 23503: the token's row is gone (foreign key): no sign-in, not a 500.
      if ((error as { code?: string }).code === '23503') return null
      throw error
    }
    return handle
  }

  /** The token id a live sign-in names, or null (unknown, ended or expired). */
  async tokenOf(handle: unknown): Promise<string | null> {
    if (typeof handle !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(handle)) return null
    const row = await db
      .from(TABLE)
      .where('handle_hash', handleHash(handle))
      .where('expires_at', '>', this.clock.now())
      .select('token_id')
      .first()
    return row ? String(row.token_id) : null
  }

  /** Ends a sign-in (a no-op for an unknown or malformed handle). */
  async end(handle: unknown): Promise<void> {
    if (typeof handle !== 'string') return
    await db.from(TABLE).where('handle_hash', handleHash(handle)).delete()
  }
}
