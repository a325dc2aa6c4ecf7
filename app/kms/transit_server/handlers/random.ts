import { badRequest } from '#kms/transit_server/http_error'
import { intField, stringField } from '#kms/transit_server/params'
import type { TransitHandler } from '#kms/transit_server/types'

/** Vault's random.APIMaxBytes. */
export const RANDOM_MAX_BYTES = 128 * 1024

const SOURCES = new Set(['', 'platform', 'seal', 'all'])
const INT64_MAX = 2n ** 63n - 1n

/** Go's strconv.Atoi, with its error text. */
function atoi(text: string): number {
  if (!/^[+-]?[0-9]+$/.test(text)) {
    throw badRequest(
      `error parsing url-set byte count: strconv.Atoi: parsing ${JSON.stringify(text)}: invalid syntax`
    )
  }
  const value = BigInt(text)
  if (value > INT64_MAX || value < -INT64_MAX - 1n) {
    throw badRequest(
      `error parsing url-set byte count: strconv.Atoi: parsing ${JSON.stringify(text)}: value out of range`
    )
  }
  return Number(value)
}

/**
 * POST random[/<source>][/<bytes>] — random bytes (`bytes`, default 32, at
 * most 128 KiB) as `hex` or `base64` (default) in `data.random_bytes`, with
 * the parsing, checks and messages of Vault's random.HandleRandomAPI
 * (helper/random/random_api.go) behind transit's pathRandomWrite. A lone
 * path segment is a source when it names one, else the byte count. This
 * server has no seal entropy: `seal` and `all` use the platform source
 * (Vault warns for `seal` in that case too).
 */
export const random: TransitHandler = async ({ engine, params, body }) => {
  const source = params.source
  const urlBytes = params.urlbytes
  let chosenSource = 'platform'
  let bytes: number
  if (source === undefined) {
    bytes = intField(body, 'bytes') ?? 32
  } else if (urlBytes === undefined && SOURCES.has(source)) {
    chosenSource = source
    bytes = intField(body, 'bytes') ?? 32
  } else if (urlBytes === undefined) {
    bytes = atoi(source)
  } else {
    chosenSource = source
    bytes = atoi(urlBytes)
  }
  const format = stringField(body, 'format') ?? 'base64'

  if (bytes < 1) throw badRequest('"bytes" cannot be less than 1')
  if (bytes > RANDOM_MAX_BYTES) throw badRequest(`"bytes" should be less than ${RANDOM_MAX_BYTES}`)
  if (format !== 'hex' && format !== 'base64') {
    throw badRequest(
      `unsupported encoding format ${JSON.stringify(format)}; must be "hex" or "base64"`
    )
  }
  if (!SOURCES.has(chosenSource)) {
    throw badRequest(
      `unsupported entropy source ${JSON.stringify(chosenSource)}; must be "platform" or "seal", or "all"`
    )
  }
  const warnings =
    chosenSource === 'seal'
      ? ['no seal/entropy augmentation available, using platform entropy source']
      : []
  const randomBytes = engine.random(bytes)
  return {
    status: 200,
    data: { random_bytes: randomBytes.toString(format) },
    warnings,
  }
}
