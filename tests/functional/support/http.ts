/*
|--------------------------------------------------------------------------
| Raw HTTP and log helpers (tests)
|--------------------------------------------------------------------------
*/
import { randomBytes } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { crc32 } from 'node:zlib'

/** URL of the suite's server. */
export function url(path: string): string {
  return `http://${process.env.HOST}:${process.env.PORT}${path}`
}

/** A parsed JSON response: status, headers, body text and the first error. */
export interface RawResponse {
  status: number
  headers: Headers
  text: string
  code: string | undefined
}

/** Sends a request with fetch (bodies the API client would not send). */
export async function send(
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}
): Promise<RawResponse> {
  const response = await fetch(url(path), {
    method: init.method ?? 'GET',
    headers: init.headers,
    body: init.body,
  })
  const text = await response.text()
  let code: string | undefined
  try {
    code = JSON.parse(text).errors?.[0]?.code
  } catch {
    code = undefined
  }
  return { status: response.status, headers: response.headers, text, code }
}

/** A token of the right shape for `id`, with a random (wrong) secret. */
export function forgedToken(id: string): string {
  const seed = randomBytes(30).toString('base64url')
  const secret = `${seed}${crc32(seed)}`
  return `rwp_${Buffer.from(id).toString('base64url')}.${Buffer.from(secret).toString('base64url')}`
}

/** The id of a real token (decoded from its first part). */
export function tokenIdOf(token: string): string {
  return Buffer.from(token.slice(4, token.indexOf('.')), 'base64url').toString()
}

/** Current size of the run's log file (LOG_FILE), to read what follows. */
export function logMark(): number {
  return statSync(process.env.LOG_FILE!).size
}

/** The JSON log lines written since `mark`. */
export function logLinesSince(mark: number): Array<Record<string, any>> {
  const text = readFileSync(process.env.LOG_FILE!).subarray(mark).toString('utf8')
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
}
