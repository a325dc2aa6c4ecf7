/*
|--------------------------------------------------------------------------
| Key Vault stand-in: one function per operation
|--------------------------------------------------------------------------
|
| create, rotate, get, list keys, list versions, update (enabled, tags),
| wrapkey, unwrapkey, with Key Vault's checks: a disabled version refuses
| get and unwrap (403 Forbidden / KeyDisabled) but still wraps, as Key
| Vault does; an operation not in the version's key_ops is 403.
|
*/
import type { StandInKeyStore, StandInKeyType, StoredVersion } from '#kms/azure_server/key_store'
import { StandInCryptoError } from '#kms/azure_server/key_store'
import {
  AzureHttpError,
  badParameter,
  keyBundle,
  keyDisabled,
  keyItem,
  keyNotFound,
} from '#kms/azure_server/wire'

/** What every handler gets. */
export interface HandlerContext {
  store: StandInKeyStore
  /** `https://host:port` as clients address it. */
  base: string
  body: Record<string, unknown>
  query: URLSearchParams
  /** Path without query, for nextLink. */
  path: string
}

const KEY_TYPES = new Set<StandInKeyType>(['RSA', 'RSA-HSM', 'oct-HSM'])
const RSA_SIZES = new Set([2048, 3072, 4096])
const PAGE_SIZE = 25

/** POST /keys/{name}/create */
export async function createKey(ctx: HandlerContext, name: string) {
  const kty = ctx.body.kty as StandInKeyType
  if (!KEY_TYPES.has(kty)) throw badParameter(`The key type ${String(kty)} is not supported.`)
  const size = Number(ctx.body.key_size ?? (kty === 'oct-HSM' ? 256 : 2048))
  if (kty === 'oct-HSM' ? size !== 256 : !RSA_SIZES.has(size)) {
    throw badParameter(`The key size ${size} is not supported for key type ${kty}.`)
  }
  const ops = Array.isArray(ctx.body.key_ops)
    ? (ctx.body.key_ops as unknown[]).map(String)
    : ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey']
  const attrs = (ctx.body.attributes ?? {}) as { enabled?: unknown }
  const tags = stringTags(ctx.body.tags)
  const version = await ctx.store.add(name, kty, size, ops, tags, attrs.enabled !== false)
  return keyBundle(ctx.base, name, version)
}

/** POST /keys/{name}/rotate: a new version like the current one (tags are not carried over). */
export async function rotateKey(ctx: HandlerContext, name: string) {
  const current = ctx.store.version(name)
  if (!current) throw keyNotFound(name)
  const size = current.rsa ? current.rsa.n.length * 8 : 256
  const version = await ctx.store.add(name, current.kty, size, current.keyOps, {})
  return keyBundle(ctx.base, name, version)
}

/** GET /keys/{name}/{version?} */
export function getKey(ctx: HandlerContext, name: string, versionId: string) {
  const version = mustFind(ctx, name, versionId)
  if (!version.enabled) throw keyDisabled('get')
  return keyBundle(ctx.base, name, version)
}

/** PATCH /keys/{name}/{version?}: attributes.enabled, tags, key_ops. */
export function updateKey(ctx: HandlerContext, name: string, versionId: string, now: number) {
  const version = mustFind(ctx, name, versionId)
  const attrs = ctx.body.attributes as { enabled?: unknown } | undefined
  if (attrs && attrs.enabled !== undefined) {
    if (typeof attrs.enabled !== 'boolean')
      throw badParameter('attributes.enabled must be a boolean')
    version.enabled = attrs.enabled
  }
  if (ctx.body.tags !== undefined) version.tags = stringTags(ctx.body.tags)
  if (Array.isArray(ctx.body.key_ops)) version.keyOps = (ctx.body.key_ops as unknown[]).map(String)
  version.updated = now
  return keyBundle(ctx.base, name, version)
}

/** GET /keys: one item per key (its current version). */
export function listKeys(ctx: HandlerContext) {
  const items = ctx.store
    .names()
    .map((name) => keyItem(ctx.base, name, ctx.store.version(name)!, false))
  return page(ctx, items)
}

/** GET /keys/{name}/versions */
export function listVersions(ctx: HandlerContext, name: string) {
  const versions = ctx.store.versions(name)
  if (!versions) throw keyNotFound(name)
  return page(
    ctx,
    versions.map((version) => keyItem(ctx.base, name, version, true))
  )
}

/** POST /keys/{name}/{version}/wrapkey */
export function wrapKey(ctx: HandlerContext, name: string, versionId: string) {
  const version = mustFind(ctx, name, versionId)
  allowed(version, 'wrapKey')
  const { alg, value } = operationInput(ctx)
  return {
    kid: `${ctx.base}/keys/${name}/${version.id}`,
    value: crypto(() => ctx.store.wrap(version, alg, value)),
  }
}

/** POST /keys/{name}/{version}/unwrapkey */
export function unwrapKey(ctx: HandlerContext, name: string, versionId: string) {
  const version = mustFind(ctx, name, versionId)
  if (!version.enabled) throw keyDisabled('unwrapKey')
  allowed(version, 'unwrapKey')
  const { alg, value } = operationInput(ctx)
  return {
    kid: `${ctx.base}/keys/${name}/${version.id}`,
    value: crypto(() => ctx.store.unwrap(version, alg, value)),
  }
}

function crypto(run: () => Buffer): string {
  try {
    return run().toString('base64url')
  } catch (error) {
    if (error instanceof StandInCryptoError) throw badParameter(error.message)
    throw error
  }
}

function allowed(version: StoredVersion, op: string) {
  if (!version.keyOps.includes(op)) {
    throw new AzureHttpError(403, 'Forbidden', `Operation ${op} is not permitted on this key.`)
  }
}

function operationInput(ctx: HandlerContext) {
  const alg = ctx.body.alg
  const value = ctx.body.value
  if (typeof alg !== 'string' || !alg) throw badParameter('The parameter alg is required.')
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]*$/.test(value)) {
    throw badParameter('The parameter value must be base64url.')
  }
  return { alg, value: Buffer.from(value, 'base64url') }
}

function mustFind(ctx: HandlerContext, name: string, versionId: string): StoredVersion {
  const version = ctx.store.version(name, versionId || undefined)
  if (!version) throw keyNotFound(name, versionId || undefined)
  return version
}

function stringTags(tags: unknown): Record<string, string> {
  if (tags === undefined || tags === null) return {}
  if (typeof tags !== 'object' || Array.isArray(tags)) throw badParameter('tags must be an object')
  return Object.fromEntries(Object.entries(tags).map(([k, v]) => [k, String(v)]))
}

/** A KeyListResult page (`maxresults`, `$skiptoken` as the offset). */
function page(ctx: HandlerContext, items: unknown[]) {
  const size = Math.min(
    25,
    Math.max(1, Number(ctx.query.get('maxresults') ?? PAGE_SIZE) || PAGE_SIZE)
  )
  const offset = Math.max(0, Number(ctx.query.get('$skiptoken') ?? 0) || 0)
  const value = items.slice(offset, offset + size)
  const more = offset + size < items.length
  const next = new URLSearchParams({
    'api-version': ctx.query.get('api-version') ?? '',
    '$skiptoken': String(offset + size),
    'maxresults': String(size),
  })
  return { value, nextLink: more ? `${ctx.base}${ctx.path}?${next}` : null }
}
