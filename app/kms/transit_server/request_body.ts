/*
|--------------------------------------------------------------------------
| Request body: size limit and JSON parsing
|--------------------------------------------------------------------------
*/
import type { IncomingMessage } from 'node:http'
import { badRequest, TransitHttpError } from '#kms/transit_server/http_error'

/** Vault's default max_request_size. */
export const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024

function tooLarge() {
  return new TransitHttpError(413, 'http: request body too large', undefined, {
    connection: 'close',
  })
}

/**
 * Reads the body, at most `limit` bytes (413 beyond, without buffering the rest).
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge())
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        req.off('data', onData)
        req.resume()
        reject(tooLarge())
        return
      }
      chunks.push(chunk)
    }
    req.on('data', onData)
    req.once('end', () => resolve(Buffer.concat(chunks)))
    req.once('error', reject)
    // A client that hangs up mid-body: settle instead of waiting forever.
    req.once('close', () => {
      if (!req.complete) reject(badRequest('request body incomplete'))
    })
  })
}

/**
 * Parses a JSON object body; `{}` when empty. The error text never echoes
 * the input (it may hold plaintext).
 */
export function parseJsonObject(raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(raw.toString('utf8'))
  } catch {
    throw badRequest('failed to parse JSON input')
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw badRequest('failed to parse JSON input: expected an object')
  }
  return parsed as Record<string, unknown>
}
