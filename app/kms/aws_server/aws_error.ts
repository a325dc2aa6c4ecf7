/*
|--------------------------------------------------------------------------
| AWS KMS error responses
|--------------------------------------------------------------------------
|
| KMS speaks AWS JSON 1.1: an error is an HTTP status (400 for client
| errors, throttling included; 500 for KMSInternalException) with the body
| `{"__type":"<Type>","message":"…"}` and the same type in the
| `x-amzn-ErrorType` header (the SDK reads either). Types and texts follow
| the KMS API reference's "Errors" sections.
|
*/

/** A KMS error to answer. */
export class AwsKmsError extends Error {
  constructor(
    public type: string,
    message: string | undefined,
    public status = 400
  ) {
    super(message ?? '')
  }

  /** The JSON body AWS sends (no message key when AWS sends none). */
  body(): Record<string, string> {
    return this.message ? { __type: this.type, message: this.message } : { __type: this.type }
  }
}

/** NotFoundException for a key id or ARN. */
export const keyNotFound = (arn: string) =>
  new AwsKmsError('NotFoundException', `Key '${arn}' does not exist`)

/** NotFoundException for an alias. */
export const aliasNotFound = (arn: string) =>
  new AwsKmsError('NotFoundException', `Alias ${arn} is not found.`)

/** DisabledException. */
export const disabled = (arn: string) => new AwsKmsError('DisabledException', `${arn} is disabled.`)

/** KMSInvalidStateException for a key pending deletion. */
export const pendingDeletion = (arn: string) =>
  new AwsKmsError('KMSInvalidStateException', `${arn} is pending deletion.`)

/** InvalidCiphertextException (AWS sends no message). */
export const invalidCiphertext = () => new AwsKmsError('InvalidCiphertextException', undefined)

/** IncorrectKeyException: the blob was encrypted under another key. */
export const incorrectKey = () =>
  new AwsKmsError(
    'IncorrectKeyException',
    'The key ID in the request does not identify a KMS key that can perform this operation.'
  )

/** ValidationException, as AWS words one failed member constraint. */
export const validation = (value: string, member: string, constraint: string) =>
  new AwsKmsError(
    'ValidationException',
    `1 validation error detected: Value ${value} at '${member}' failed to satisfy constraint: ${constraint}`
  )
