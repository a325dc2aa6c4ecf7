/*
|--------------------------------------------------------------------------
| SAIDs (self-addressing identifiers)
|--------------------------------------------------------------------------
|
| A SAID is the Blake3-256 digest of a JSON document, CESR-encoded with the
| `E` code, computed while its own field (`d`, or `i` and `d` for an
| inception event, `$id` for a JSON schema) holds 44 `#` characters and, when
| the document has a version string `v`, after `v` carries the document's
| byte size. This is signify-ts' `Saider.saidify` / keripy's `Saider`.
|
| The serialization is `JSON.stringify` of the object in its key order (as
| keripy's `json.dumps(separators=(",", ":"))`). JavaScript moves keys that
| look like array indexes ("0", "12") to the front of an object, which would
| change the bytes after a parse, so such keys are refused.
|
*/
import { Diger } from './signify.js'

/** A JSON object as parsed (plain data only). */
export type Sad = { [key: string]: unknown }

/** The placeholder a SAID field holds while its digest is computed. */
export const SAID_PLACEHOLDER = '#'.repeat(44)

/** CESR version string of a v1 JSON serialization: protocol, version 1.0, JSON, size in hex. */
const VERSION_RE = /^(KERI|ACDC)10JSON([0-9a-f]{6})_$/

/** Keys JavaScript would reorder (canonical array indexes). */
const INDEX_KEY_RE = /^(0|[1-9]\d*)$/

/** A SAID: `E` + 43 Base64url characters (Blake3-256). */
export const SAID_RE = /^E[A-Za-z0-9_-]{43}$/

/** Thrown when a document cannot be serialized the same way on every platform. */
export class SadShapeError extends Error {}

/**
 * The version string for a protocol and a serialized size in bytes
 * (`KERI10JSON00012b_`).
 */
export function versionString(protocol: 'KERI' | 'ACDC', size: number): string {
  return `${protocol}10JSON${size.toString(16).padStart(6, '0')}_`
}

/**
 * Parses a v1 JSON version string; `undefined` when it is not one.
 */
export function parseVersion(v: unknown): { protocol: 'KERI' | 'ACDC'; size: number } | undefined {
  if (typeof v !== 'string') return undefined
  const match = VERSION_RE.exec(v)
  if (!match) return undefined
  return { protocol: match[1] as 'KERI' | 'ACDC', size: Number.parseInt(match[2], 16) }
}

function assertStable(value: unknown, path: string): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new SadShapeError(`${path}: non-finite number`)
    return
  }
  if (Array.isArray(value)) {
    value.forEach((item, index) => assertStable(item, `${path}[${index}]`))
    return
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, item] of Object.entries(value)) {
      if (INDEX_KEY_RE.test(key)) throw new SadShapeError(`${path}: index-like key "${key}"`)
      if (item === undefined) throw new SadShapeError(`${path}.${key}: undefined`)
      assertStable(item, `${path}.${key}`)
    }
    return
  }
  throw new SadShapeError(`${path}: not plain JSON`)
}

/**
 * The bytes that are digested and signed: `JSON.stringify` of the document,
 * after `v` (when present) was set to the serialized size. Returns the sized
 * copy and its UTF-8 bytes. Throws `SadShapeError` on data that would not
 * survive a parse unchanged.
 */
export function serialize(sad: Sad): { sad: Sad; raw: Uint8Array } {
  assertStable(sad, '$')
  const copy: Sad = structuredClone(sad)
  if ('v' in copy) {
    const version = parseVersion(copy.v)
    if (!version) throw new SadShapeError('$.v: not a v1 JSON version string')
    const size = Buffer.byteLength(JSON.stringify(copy), 'utf8')
    copy.v = versionString(version.protocol, size)
  }
  return { sad: copy, raw: new Uint8Array(Buffer.from(JSON.stringify(copy), 'utf8')) }
}

/**
 * The Blake3-256 SAID of `sad` with each of `labels` as placeholder
 * (`['d']` for most documents, `['i', 'd']` for an inception event,
 * `['$id']` for a JSON schema). The document is not changed.
 */
export function deriveSaid(sad: Sad, labels: readonly string[] = ['d']): string {
  const copy: Sad = { ...sad }
  for (const label of labels) {
    if (!(label in copy)) throw new SadShapeError(`$.${label}: missing SAID field`)
    copy[label] = SAID_PLACEHOLDER
  }
  const { raw } = serialize(copy)
  return new Diger({}, raw).qb64
}

/**
 * A copy of `sad` with its SAID in every one of `labels` and `v` sized.
 */
export function saidify<T extends Sad>(sad: T, labels: readonly string[] = ['d']): T {
  const said = deriveSaid(sad, labels)
  const copy: Sad = { ...sad }
  for (const label of labels) copy[label] = said
  return serialize(copy).sad as T
}

/**
 * True when every one of `labels` holds the document's SAID and, when it has
 * a version string, `v` carries its exact serialized size. Never throws.
 */
export function verifySaid(sad: Sad, labels: readonly string[] = ['d']): boolean {
  try {
    const said = deriveSaid(sad, labels)
    if (!labels.every((label) => sad[label] === said)) return false
    if ('v' in sad) return serialize(sad).sad.v === sad.v
    return true
  } catch {
    return false
  }
}
