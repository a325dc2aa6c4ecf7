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
*/

interface RequestOptions {
  method: string
  uri: string
  headers?: Record<string, string>
  json?: unknown
  timeout?: number
}

/** Response headers by response body, for errors that carry only the body. */
export const responseHeaders = new WeakMap<object, Headers>()

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
 * Builds the transport object node-vault expects (`defaults()` → request fn).
 */
export function fetchTransport(timeoutMs: number) {
  const request = async (options: RequestOptions) => {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), options.timeout ?? timeoutMs)
    let response: Response
    let text: string
    try {
      const headers: Record<string, string> = { ...options.headers }
      let body: string | undefined
      if (options.json !== undefined && typeof options.json === 'object') {
        body = JSON.stringify(options.json)
        headers['content-type'] = 'application/json'
      }
      response = await fetch(options.uri, {
        method: options.method,
        headers,
        body,
        signal: controller.signal,
      })
      text = await response.text()
    } catch (error) {
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
