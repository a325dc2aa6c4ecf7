/*
|--------------------------------------------------------------------------
| HTTP transport for node-vault
|--------------------------------------------------------------------------
|
| node-vault accepts a `request-promise`-style transport. This one uses
| fetch (keep-alive connections), applies a timeout to every request and
| keeps the response headers that node-vault drops, so the driver can
| honour Retry-After.
|
| Redirects are followed by hand and only on the configured origin: a
| request carries the token and DEKs, and fetch would resend both to any
| host a redirect names. A redirect elsewhere is E_KMS_REDIRECT. A plain
| http:// address is refused unless it is loopback or explicitly allowed
| (assertSecureEndpoint, called when the driver is built).
|
*/
import { isIP } from 'node:net'
import { E_KMS_CONFIG, E_KMS_REDIRECT } from '#app/errors'
import { KmsDetail } from '#kms/error_codes'

interface RequestOptions {
  method: string
  uri: string
  headers?: Record<string, string>
  json?: unknown
  timeout?: number
}

/** Response headers by response body, for errors that carry only the body. */
export const responseHeaders = new WeakMap<object, Headers>()

/** Redirect hops followed on the configured origin before giving up. */
export const MAX_REDIRECTS = 5

/** A network failure or timeout (no HTTP status). */
export class TransportError extends Error {
  constructor(
    message: string,
    public reason: 'timeout' | 'network'
  ) {
    super(message)
  }
}

/**
 * True for loopback hosts: `localhost`, 127.0.0.0/8, `::1` (and
 * IPv4-mapped loopback).
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  if (host === 'localhost') return true
  if (isIP(host) === 4) return host.startsWith('127.')
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./.test(host)
  return false
}

/**
 * Throws E_KMS_CONFIG unless `endpoint` is https://, or http:// on a
 * loopback host, or http:// with `allowInsecureHttp`
 * (VAULT_ALLOW_INSECURE_HTTP=true).
 */
export function assertSecureEndpoint(endpoint: string, allowInsecureHttp = false) {
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw new E_KMS_CONFIG(['the Vault address is not a URL'])
  }
  if (url.protocol === 'https:') return
  if (url.protocol !== 'http:') {
    throw new E_KMS_CONFIG([`the Vault address must be https:// (got ${url.protocol}//)`])
  }
  if (allowInsecureHttp || isLoopbackHost(url.hostname)) return
  throw new E_KMS_CONFIG([
    `the Vault address ${url.origin} is plain http:// on a non-loopback host (the token and DEKs would cross the network in clear): use https://, or set VAULT_ALLOW_INSECURE_HTTP=true to accept it`,
  ])
}

/** E_KMS_REDIRECT with a fixed message; where it pointed is a detail for the log only. */
function redirectRefused(detail: string) {
  return new E_KMS_REDIRECT(undefined, { cause: new KmsDetail(`redirect not followed: ${detail}`) })
}

/** The next URL of a redirect to follow; throws E_KMS_REDIRECT for one not to follow. */

function redirectTarget(response: Response, current: URL, origin: string, method: string) {
  const location = response.headers.get('location')
  if (!location) return null
  let target: URL
  try {
    target = new URL(location, current)
  } catch {
    throw redirectRefused(`status ${response.status} with an invalid Location`)
  }
  if (target.origin !== origin) {
    throw redirectRefused(
      `status ${response.status} to ${target.origin}, off the configured ${origin}`
    )
  }
  // 301/302/303 would turn a write into a GET without its body: only 307/308 keep both.
  const keepsMethod = response.status === 307 || response.status === 308
  if (!keepsMethod && method !== 'GET' && method !== 'HEAD') {
    throw redirectRefused(`status ${response.status} for a ${method} request`)
  }
  return target
}

/**
 * Builds the transport object node-vault expects (`defaults()` → request fn).
 */
export function fetchTransport(timeoutMs: number) {
  const request = async (options: RequestOptions) => {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), options.timeout ?? timeoutMs)
    let response: Response
    let text: string
    let url = new URL(options.uri)
    const origin = url.origin
    try {
      const headers: Record<string, string> = { ...options.headers }
      let body: string | undefined
      if (options.json !== undefined && typeof options.json === 'object') {
        body = JSON.stringify(options.json)
        headers['content-type'] = 'application/json'
      }
      for (let hops = 0; ; hops++) {
        response = await fetch(url, {
          method: options.method,
          headers,
          body,
          signal: controller.signal,
          redirect: 'manual',
        })
        const next =
          response.status >= 300 && response.status < 400
            ? redirectTarget(response, url, origin, options.method)
            : null
        if (!next) break
        await response.body?.cancel()
        if (hops >= MAX_REDIRECTS) {
          throw redirectRefused(`more than ${MAX_REDIRECTS} redirects`)
        }
        url = next
      }
      text = await response.text()
    } catch (error) {
      if (error instanceof E_KMS_REDIRECT) throw error
      const timedOut = controller.signal.aborted
      throw new TransportError(
        timedOut
          ? `request timed out after ${options.timeout ?? timeoutMs} ms`
          : `network error: ${(error as Error).cause ? String((error as any).cause?.code ?? 'connection failed') : 'connection failed'}`,
        timedOut ? 'timeout' : 'network'
      )
    } finally {
      clearTimeout(timer)
    }
    let parsed: any = {}
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text)
      } catch {
        parsed = { errors: [`non-JSON response (status ${response.status})`] }
      }
    }
    if (parsed && typeof parsed === 'object') responseHeaders.set(parsed, response.headers)
    return {
      statusCode: response.status,
      body: parsed,
      request: { path: new URL(options.uri).pathname },
    }
  }
  return { defaults: () => request }
}
