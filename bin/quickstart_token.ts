/*
|--------------------------------------------------------------------------
| The quickstart's access token
|--------------------------------------------------------------------------
|
| `npm start` keeps one token, stored in a file only its user can read
| (mode 0600, e.g. .data/quickstart-token). On the next start it reuses
| that token while it is still valid (same id, same creation time, more
| than a day left); otherwise it creates a new one and revokes the old one.
| A file others could read counts as leaked: its token is revoked.
|
*/
import { existsSync, lstatSync, readFileSync } from 'node:fs'
import { writePrivateFile } from './dotenv.js'

/** What the token file holds. */
export interface StoredToken {
  tokenId: string
  createdAt: string | null
  expiresAt: string | null
  token: string
}

/** A token as `token:list --json` lists it. */
export interface ListedToken {
  tokenId: string
  name: string | null
  createdAt: string | null
  expiresAt: string | null
  expired: boolean
}

/** The I/O the decision needs (ace commands in `npm start`). */
export interface TokenOps {
  list(): Promise<ListedToken[]>
  /** Creates the quickstart token (with its default lifetime). */
  create(): Promise<StoredToken>
  revoke(tokenId: string): Promise<void>
  now(): Date
}

/** The outcome, for the lines `npm start` prints. */
export interface QuickstartToken {
  token: string
  tokenId: string
  expiresAt: string | null
  reused: boolean
  /** The id of the previous token revoked now, with why. */
  revoked?: { tokenId: string; reason: string }
  /** Other never-expiring tokens named "quickstart" (made by older versions). */
  legacyIds: string[]
}

/** Reuse only with more than this left before expiry. */
const MIN_REMAINING_MS = 24 * 3600 * 1000

/**
 * The stored token when `path` is a regular file of this user, mode 0600
 * or stricter; `exposed` when it exists but others may read it.
 */
export function readStoredToken(path: string): { stored?: StoredToken; exposed: boolean } {
  if (!existsSync(path)) return { exposed: false }
  const stat = lstatSync(path)
  const exposed = !stat.isFile() || stat.uid !== process.getuid?.() || (stat.mode & 0o077) !== 0
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as StoredToken
    if (typeof parsed.tokenId !== 'string' || typeof parsed.token !== 'string') {
      return { exposed }
    }
    return { stored: parsed, exposed }
  } catch {
    return { exposed }
  }
}

/**
 * Reuses the stored quickstart token while valid, else creates one (stored
 * 0600 in `path`) and revokes the previous one.
 */
export async function quickstartToken(path: string, ops: TokenOps): Promise<QuickstartToken> {
  const { stored, exposed } = readStoredToken(path)
  const listed = await ops.list()
  const previous = stored
    ? listed.find(
        (t) =>
          t.tokenId === stored.tokenId &&
          t.createdAt === stored.createdAt &&
          t.name === 'quickstart'
      )
    : undefined
  const legacyIds = (current: string) =>
    listed
      .filter(
        (t) =>
          t.name === 'quickstart' &&
          t.expiresAt === null &&
          t.tokenId !== current &&
          t.tokenId !== previous?.tokenId
      )
      .map((t) => t.tokenId)

  if (stored && previous && !exposed) {
    const left = previous.expiresAt
      ? new Date(previous.expiresAt).getTime() - ops.now().getTime()
      : Infinity
    if (left > MIN_REMAINING_MS) {
      return {
        token: stored.token,
        tokenId: previous.tokenId,
        expiresAt: previous.expiresAt,
        reused: true,
        legacyIds: legacyIds(previous.tokenId),
      }
    }
  }
  const created = await ops.create()
  writePrivateFile(path, `${JSON.stringify(created)}\n`)
  let revoked: QuickstartToken['revoked']
  if (previous) {
    await ops.revoke(previous.tokenId)
    revoked = {
      tokenId: previous.tokenId,
      reason: exposed ? 'its file was readable by others' : 'it expires within a day',
    }
  }
  return {
    token: created.token,
    tokenId: created.tokenId,
    expiresAt: created.expiresAt,
    reused: false,
    revoked,
    legacyIds: legacyIds(created.tokenId),
  }
}
