/*
|--------------------------------------------------------------------------
| JSON body reading
|--------------------------------------------------------------------------
|
| Reads a request body as JSON with explicit bounds: the media type,
| the content coding, the size after decompression and the nesting depth
| are checked, and every failure is a client error with a stable code (a
| corrupt gzip stream, an unknown coding or 10,000 nested arrays are the
| client's fault, never a 500 or a stack overflow). Error messages never
| quote the body.
|
*/
import type { IncomingMessage } from 'node:http'
import { type Readable } from 'node:stream'
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib'
import type { JsonBodyConfig } from '#config/bodyparser'
import { E_INVALID_JSON, E_REQUEST_ENTITY_TOO_LARGE, E_UNSUPPORTED_MEDIA_TYPE } from '#app/errors'

/** Keys that JSON must not define (prototype poisoning of later merges). */
const FORBIDDEN_KEYS = new Set(['__proto__'])

/**
 * True when the request announces a body (a non-zero Content-Length, or
 * Transfer-Encoding).
 */
export function hasBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true
  const length = req.headers['content-length']
  return length !== undefined && length !== '0'
}

/**
 * Checks the Content-Type: `application/json`, optionally with
 * `charset=utf-8`; throws 415 E_UNSUPPORTED_MEDIA_TYPE otherwise (pure).
 */
export function assertJsonMediaType(contentType: string | undefined): void {
  const [type, ...params] = (contentType ?? '').split(';').map((part) => part.trim().toLowerCase())
  if (type !== 'application/json') {
    throw new E_UNSUPPORTED_MEDIA_TYPE(['send Content-Type: application/json'])
  }
  for (const param of params) {
    if (param !== '' && param !== 'charset=utf-8' && param !== 'charset="utf-8"') {
      throw new E_UNSUPPORTED_MEDIA_TYPE(['only the utf-8 charset is accepted'])
    }
  }
}

/**
 * Throws 400 E_INVALID_JSON when the JSON text nests objects/arrays deeper
 * than `maxDepth` (an iterative scan: it cannot overflow the stack).
 */
export function assertJsonDepth(text: string, maxDepth: number): void {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i)
    if (inString) {
      if (char === 0x5c)
        i++ // backslash: skip the escaped character
      else if (char === 0x22) inString = false
    } else if (char === 0x22) {
      inString = true
    } else if (char === 0x7b || char === 0x5b) {
      if (++depth > maxDepth) {
        throw new E_INVALID_JSON([`nested deeper than ${maxDepth} levels`])
      }
    } else if (char === 0x7d || char === 0x5d) {
      depth--
    }
  }
}

/**
 * Parses JSON text into an object (depth checked first; arrays and
 * scalars are refused: every body of this API is an object).
 */
export function parseJsonBody(text: string, maxDepth: number): Record<string, unknown> {
  assertJsonDepth(text, maxDepth)
  let parsed: unknown
  try {
    parsed = JSON.parse(text, (key, value) => {
      if (FORBIDDEN_KEYS.has(key)) throw new TypeError('forbidden key')
      return value
    })
  } catch {
    throw new E_INVALID_JSON(['malformed JSON or a forbidden "__proto__" key'])
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new E_INVALID_JSON(['the body must be a JSON object'])
  }
  return parsed as Record<string, unknown>
}

/** The decoded stream of the request's content coding. */
function decoded(req: IncomingMessage, config: JsonBodyConfig): Readable {
  const coding = String(req.headers['content-encoding'] ?? 'identity')
    .trim()
    .toLowerCase()
  if (!(config.encodings as string[]).includes(coding)) {
    throw new E_UNSUPPORTED_MEDIA_TYPE([
      `Content-Encoding "${coding.slice(0, 20)}" is not accepted`,
    ])
  }
  if (coding === 'identity') return req
  const decoder =
    coding === 'gzip'
      ? createGunzip()
      : coding === 'deflate'
        ? createInflate()
        : createBrotliDecompress()
  req.on('error', (error) => decoder.destroy(error))
  return req.pipe(decoder)
}

/**
 * Reads the whole body (decompressed, at most `config.limitBytes`) as
 * UTF-8 text. A declared Content-Length over the limit is refused unread.
 */
export async function readBodyText(req: IncomingMessage, config: JsonBodyConfig): Promise<string> {
  const limit = `${config.limitBytes} bytes`
  const declared = Number(req.headers['content-length'] ?? 0)
  const coding = req.headers['content-encoding']
  if ((coding === undefined || coding === 'identity') && declared > config.limitBytes) {
    throw new E_REQUEST_ENTITY_TOO_LARGE([limit])
  }
  const stream = decoded(req, config)
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of stream) {
      size += (chunk as Buffer).length
      if (size > config.limitBytes) {
        stream.destroy()
        throw new E_REQUEST_ENTITY_TOO_LARGE([limit])
      }
      chunks.push(chunk as Buffer)
    }
  } catch (error) {
    if (error instanceof E_REQUEST_ENTITY_TOO_LARGE) throw error
    throw new E_INVALID_JSON(['the body could not be read or decompressed'])
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks))
  } catch {
    throw new E_INVALID_JSON(['the body is not valid UTF-8'])
  }
}
