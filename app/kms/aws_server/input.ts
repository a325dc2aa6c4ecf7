/*
|--------------------------------------------------------------------------
| Request members of the AWS KMS stand-in (AWS JSON 1.1 input parsing)
|--------------------------------------------------------------------------
*/
import { AwsKmsError, validation } from '#kms/aws_server/aws_error'

/** A parsed request body. */
export type Input = Record<string, unknown>

/** A string member (SerializationException when not one). */
export function str(input: Input, member: string, required = true): string | undefined {
  const value = input[member]
  if (value === undefined || value === null) {
    if (required) throw validation('null', lowerFirst(member), 'Member must not be null')
    return undefined
  }
  if (typeof value !== 'string' || value.length === 0) {
    throw new AwsKmsError('SerializationException', `Unexpected value for ${member}`)
  }
  return value
}

/** A base64 blob member. */
export function blob(input: Input, member: string): Buffer {
  const text = str(input, member)!
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new AwsKmsError('SerializationException', `Unable to decode ${member}`)
  }
  return Buffer.from(text, 'base64')
}

/** An encryption context member (string → string). */
export function context(input: Input, member: string): Record<string, string> {
  const value = input[member]
  if (value === undefined || value === null) return {}
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new AwsKmsError('SerializationException', `Unexpected value for ${member}`)
  }
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string')
      throw new AwsKmsError('SerializationException', `Unexpected value for ${member}`)
    out[k] = v
  }
  return out
}

/** The Tags member as pairs. */
export function tags(input: Input): Array<[string, string]> {
  const value = input.Tags
  if (value === undefined) return []
  if (!Array.isArray(value))
    throw new AwsKmsError('SerializationException', 'Unexpected value for Tags')
  return value.map((tag: any) => {
    if (typeof tag?.TagKey !== 'string' || typeof tag?.TagValue !== 'string') {
      throw new AwsKmsError('TagException', 'Tags must have a TagKey and a TagValue')
    }
    return [tag.TagKey, tag.TagValue] as [string, string]
  })
}

/** `KeyId` → `keyId`, as AWS names members in validation errors. */
export function lowerFirst(text: string) {
  return text[0].toLowerCase() + text.slice(1)
}

/** Limit / Marker paging as KMS does (opaque marker: the next index). */
export function page<T>(items: T[], input: Input, max: number, fallback: number) {
  const limit = input.Limit === undefined ? fallback : Number(input.Limit)
  if (!Number.isInteger(limit) || limit < 1 || limit > max) {
    throw validation(
      String(input.Limit),
      'limit',
      `Member must have value less than or equal to ${max}`
    )
  }
  const start = input.Marker === undefined ? 0 : Number.parseInt(String(input.Marker), 10)
  if (!Number.isInteger(start) || start < 0)
    throw new AwsKmsError('InvalidMarkerException', 'Invalid marker')
  const slice = items.slice(start, start + limit)
  const more = start + limit < items.length
  return {
    slice,
    more: more ? { NextMarker: String(start + limit), Truncated: true } : { Truncated: false },
  }
}
