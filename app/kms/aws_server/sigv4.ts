/*
|--------------------------------------------------------------------------
| AWS Signature Version 4 verification (pure; clock passed in)
|--------------------------------------------------------------------------
|
| What AWS does with a signed request, after the SigV4 specification
| ("Create a signed AWS API request", docs.aws.amazon.com/IAM/latest/
| UserGuide/reference_sigv-create-signed-request.html): rebuild the
| canonical request (method, URI-encoded path, sorted query, the signed
| headers lower-cased with trimmed values, the payload's SHA-256), the
| string to sign (algorithm, x-amz-date, credential scope, hash of the
| canonical request), derive the signing key by the HMAC chain
| `AWS4<secret>` → date → region → service → `aws4_request`, and compare
| signatures in constant time. Refusals carry AWS's own error types and
| messages.
|
*/
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

/** A request as it arrived. */
export interface SignedRequest {
  method: string
  /** Raw path and query as on the request line (`/` or `/?a=b`). */
  url: string
  /** Lower-cased header names (Node's req.headers). */
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** The credentials the server accepts. */
export interface Sigv4Credentials {
  accessKeyId: string
  secretAccessKey: string
}

/** A refusal in AWS's terms. */
export interface Sigv4Refusal {
  ok: false
  type:
    | 'MissingAuthenticationTokenException'
    | 'IncompleteSignatureException'
    | 'UnrecognizedClientException'
    | 'InvalidSignatureException'
  message: string
}

/** Outcome of a verification. */
export type Sigv4Result = { ok: true; accessKeyId: string; region: string } | Sigv4Refusal

/** AWS's text when the recomputed signature differs. */
export const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'

/** AWS's text for an access key it does not know. */
export const UNKNOWN_ACCESS_KEY = 'The security token included in the request is invalid.'

const ALGORITHM = 'AWS4-HMAC-SHA256'
/** AWS refuses a request signed more than 5 minutes from its clock. */
const MAX_SKEW_MS = 5 * 60 * 1000

const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex')
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest()

/** RFC 3986 encoding as SigV4 requires (unreserved characters kept). */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`
  )
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, '%20'))
  } catch {
    return value
  }
}

/** Path of a non-S3 service: each segment encoded again (the spec's double encoding). */
function canonicalPath(path: string): string {
  if (path === '' || path === '/') return '/'
  return path
    .split('/')
    .map((segment) => uriEncode(segment))
    .join('/')
}

function canonicalQuery(query: string): string {
  if (!query) return ''
  return query
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const eq = pair.indexOf('=')
      const key = safeDecode(eq === -1 ? pair : pair.slice(0, eq))
      const value = safeDecode(eq === -1 ? '' : pair.slice(eq + 1))
      return [uriEncode(key), uriEncode(value)] as const
    })
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&')
}

function headerValue(headers: SignedRequest['headers'], name: string): string | undefined {
  const value = headers[name]
  if (value === undefined) return undefined
  const joined = Array.isArray(value) ? value.join(',') : value
  return joined.trim().replace(/\s+/g, ' ')
}

/** Parses `YYYYMMDDTHHMMSSZ`. */
function parseAmzDate(value: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value)
  if (!m) return null
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])
  return Number.isFinite(ms) ? ms : null
}

/** The signing key: HMAC chain over date, region, service. */
export function signingKey(secret: string, date: string, region: string, service: string) {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request')
}

/** The canonical request and string to sign of a request (exported for tests). */
export function stringToSign(
  request: SignedRequest,
  signedHeaders: string[],
  amzDate: string,
  scope: string
): string {
  const q = request.url.indexOf('?')
  const path = q === -1 ? request.url : request.url.slice(0, q)
  const query = q === -1 ? '' : request.url.slice(q + 1)
  const headerLines = signedHeaders
    .map((name) => `${name}:${headerValue(request.headers, name) ?? ''}\n`)
    .join('')
  // Always the hash of the body that arrived: a client's x-amz-content-sha256
  // is checked against it in verifySigv4, never trusted in its place.
  const payloadHash = sha256Hex(request.body)
  const canonical = [
    request.method.toUpperCase(),
    canonicalPath(path),
    canonicalQuery(query),
    headerLines,
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n')
  return [ALGORITHM, amzDate, scope, sha256Hex(canonical)].join('\n')
}

/**
 * Verifies a request's Authorization header against the known credentials
 * for `service`, at time `nowMs`.
 */
export function verifySigv4(
  request: SignedRequest,
  credentials: Sigv4Credentials,
  service: string,
  nowMs: number
): Sigv4Result {
  const auth = headerValue(request.headers, 'authorization')
  if (!auth) return refuse('MissingAuthenticationTokenException', 'Missing Authentication Token')
  if (!auth.startsWith(`${ALGORITHM} `)) {
    return refuse('IncompleteSignatureException', `Unsupported authorization type`)
  }
  const fields = new Map<string, string>()
  for (const part of auth.slice(ALGORITHM.length + 1).split(',')) {
    const eq = part.indexOf('=')
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  const credential = fields.get('Credential')
  const signed = fields.get('SignedHeaders')
  const signature = fields.get('Signature')
  if (!credential || !signed || !signature) {
    return refuse(
      'IncompleteSignatureException',
      "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters."
    )
  }
  const [accessKeyId, date, region, scopeService, terminator, ...rest] = credential.split('/')
  if (!terminator || rest.length > 0 || terminator !== 'aws4_request') {
    return refuse('IncompleteSignatureException', 'Credential is malformed.')
  }
  if (accessKeyId !== credentials.accessKeyId)
    return refuse('UnrecognizedClientException', UNKNOWN_ACCESS_KEY)
  if (scopeService !== service) {
    return refuse(
      'InvalidSignatureException',
      `Credential should be scoped to correct service: '${service}'.`
    )
  }
  const amzDate = headerValue(request.headers, 'x-amz-date')
  const signedAt = amzDate ? parseAmzDate(amzDate) : null
  if (!amzDate || signedAt === null) {
    return refuse(
      'IncompleteSignatureException',
      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )
  }
  if (amzDate.slice(0, 8) !== date) {
    return refuse(
      'InvalidSignatureException',
      'Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.'
    )
  }
  if (Math.abs(nowMs - signedAt) > MAX_SKEW_MS) {
    return refuse(
      'InvalidSignatureException',
      `Signature expired: ${amzDate} is now earlier or later than the server time (± 5 min.)`
    )
  }
  const signedHeaders = signed.split(';')
  if (!signedHeaders.includes('host')) {
    return refuse(
      'InvalidSignatureException',
      "'Host' must be a 'SignedHeader' in the AWS Authorization."
    )
  }
  const declaredHash = headerValue(request.headers, 'x-amz-content-sha256')
  if (declaredHash !== undefined && declaredHash !== sha256Hex(request.body)) {
    return refuse(
      'InvalidSignatureException',
      "The provided 'x-amz-content-sha256' header does not match what was computed."
    )
  }
  const scope = `${date}/${region}/${service}/aws4_request`
  const toSign = stringToSign(request, signedHeaders, amzDate, scope)
  const expected = createHmac(
    'sha256',
    signingKey(credentials.secretAccessKey, date, region, service)
  )
    .update(toSign)
    .digest()
  const given = /^[0-9a-f]{64}$/.test(signature) ? Buffer.from(signature, 'hex') : Buffer.alloc(0)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return refuse('InvalidSignatureException', SIGNATURE_MISMATCH)
  }
  return { ok: true, accessKeyId, region }
}

function refuse(type: Sigv4Refusal['type'], message: string): Sigv4Refusal {
  return { ok: false, type, message }
}
