/*
|--------------------------------------------------------------------------
| Transit routes (paths below /v1/<mount>/)
|--------------------------------------------------------------------------
*/
import { configureKey } from '#kms/transit_server/handlers/configure_key'
import { createKey } from '#kms/transit_server/handlers/create_key'
import { datakey } from '#kms/transit_server/handlers/datakey'
import { decrypt } from '#kms/transit_server/handlers/decrypt'
import { deleteKey } from '#kms/transit_server/handlers/delete_key'
import { encrypt } from '#kms/transit_server/handlers/encrypt'
import { listKeys } from '#kms/transit_server/handlers/list_keys'
import { random } from '#kms/transit_server/handlers/random'
import { readKey } from '#kms/transit_server/handlers/read_key'
import { rewrap } from '#kms/transit_server/handlers/rewrap'
import { rotateKey } from '#kms/transit_server/handlers/rotate_key'
import { trimKey } from '#kms/transit_server/handlers/trim_key'
import type { TransitHandler } from '#kms/transit_server/types'

/** Vault's framework.GenericNameRegex. */
const NAME = /^\w(?:[\w\-.@]*\w)?$/

interface Route {
  segments: string[]
  handlers: Record<string, TransitHandler>
}

function route(pattern: string, handlers: Record<string, TransitHandler>): Route {
  // Vault treats PUT and POST alike (both are "update").
  if (handlers.POST) handlers.PUT = handlers.POST
  return { segments: pattern.split('/'), handlers }
}

const ROUTES: Route[] = [
  route('keys', { GET: listKeys }),
  route('keys/:name', { GET: readKey, POST: createKey, DELETE: deleteKey }),
  route('keys/:name/rotate', { POST: rotateKey }),
  route('keys/:name/config', { POST: configureKey }),
  route('keys/:name/trim', { POST: trimKey }),
  route('encrypt/:name', { POST: encrypt }),
  route('decrypt/:name', { POST: decrypt }),
  route('rewrap/:name', { POST: rewrap }),
  route('datakey/:plaintext/:name', { POST: datakey }),
  // Vault's pathRandom: random[/<source>][/<bytes>].
  route('random', { POST: random }),
  route('random/:source', { POST: random }),
  route('random/:source/:urlbytes', { POST: random }),
]

/** A matched route. */
export interface RouteMatch {
  params: Record<string, string>
  /** The handler for the method, undefined when the method is not allowed. */
  handler?: TransitHandler
  /** Methods the path supports (for 405's Allow header). */
  allowed: string[]
}

/**
 * Matches a path relative to the mount (`keys/orders/rotate`); null when no route.
 */
export function matchRoute(method: string, relativePath: string): RouteMatch | null {
  const parts = relativePath.split('/')
  for (const candidate of ROUTES) {
    const params = matchSegments(candidate.segments, parts)
    if (!params) continue
    return {
      params,
      // Own members only: a method name is never looked up on Object.prototype.
      handler: Object.hasOwn(candidate.handlers, method) ? candidate.handlers[method] : undefined,
      allowed: Object.keys(candidate.handlers),
    }
  }
  return null
}

function matchSegments(segments: string[], parts: string[]): Record<string, string> | null {
  if (segments.length !== parts.length) return null
  const params: Record<string, string> = {}
  for (const [index, segment] of segments.entries()) {
    if (segment.startsWith(':')) {
      const value = safeDecode(parts[index])
      if (value === null || !NAME.test(value)) return null
      params[segment.slice(1)] = value
    } else if (segment !== parts[index]) {
      return null
    }
  }
  return params
}

function safeDecode(part: string): string | null {
  try {
    return decodeURIComponent(part)
  } catch {
    return null
  }
}
