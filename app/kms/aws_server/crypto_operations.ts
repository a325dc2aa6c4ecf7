/*
|--------------------------------------------------------------------------
| Cryptographic operations of the stand-in (TrentService.<Op>)
|--------------------------------------------------------------------------
|
| Encrypt, Decrypt, ReEncrypt, GenerateDataKey: members as in the AWS KMS
| API reference (blobs base64). Plaintext is never logged or echoed in an
| error ("*** Sensitive Data Redacted ***", as AWS words it).
|
*/
import { AwsKmsError, validation } from '#kms/aws_server/aws_error'
import { blob, context, str } from '#kms/aws_server/input'
import type { Operation } from '#kms/aws_server/key_operations'

/** Cryptographic operations, by X-Amz-Target suffix. */
export const cryptoOperations: Record<string, Operation> = {
  Encrypt(model, input) {
    const key = model.resolve(str(input, 'KeyId')!)
    const plaintext = blob(input, 'Plaintext')
    if (plaintext.length < 1 || plaintext.length > 4096) {
      throw validation(
        '*** Sensitive Data Redacted ***',
        'plaintext',
        'Member must have length less than or equal to 4096'
      )
    }
    const out = model.encrypt(key, plaintext, context(input, 'EncryptionContext'))
    return {
      CiphertextBlob: out.toString('base64'),
      KeyId: key.arn,
      EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    }
  },
  Decrypt(model, input) {
    const keyId = str(input, 'KeyId', false)
    const expected = keyId ? model.resolve(keyId) : undefined
    const { key, plaintext } = model.decrypt(
      blob(input, 'CiphertextBlob'),
      context(input, 'EncryptionContext'),
      expected
    )
    return {
      KeyId: key.arn,
      Plaintext: plaintext.toString('base64'),
      EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    }
  },
  ReEncrypt(model, input) {
    const sourceId = str(input, 'SourceKeyId', false)
    const expected = sourceId ? model.resolve(sourceId) : undefined
    const destination = model.resolve(str(input, 'DestinationKeyId')!)
    const { key, plaintext } = model.decrypt(
      blob(input, 'CiphertextBlob'),
      context(input, 'SourceEncryptionContext'),
      expected
    )
    try {
      const out = model.encrypt(
        destination,
        plaintext,
        context(input, 'DestinationEncryptionContext')
      )
      return {
        CiphertextBlob: out.toString('base64'),
        SourceKeyId: key.arn,
        KeyId: destination.arn,
        SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      }
    } finally {
      plaintext.fill(0)
    }
  },
  GenerateDataKey(model, input) {
    const key = model.resolve(str(input, 'KeyId')!)
    const spec = str(input, 'KeySpec', false)
    const bytes = spec === 'AES_256' ? 32 : spec === 'AES_128' ? 16 : Number(input.NumberOfBytes)
    if (!Number.isInteger(bytes) || bytes < 1 || bytes > 1024) {
      throw new AwsKmsError(
        'ValidationException',
        'Please specify either number of bytes or key spec.'
      )
    }
    const plaintext = model.randomBytes(bytes)
    const out = model.encrypt(key, plaintext, context(input, 'EncryptionContext'))
    return {
      CiphertextBlob: out.toString('base64'),
      Plaintext: plaintext.toString('base64'),
      KeyId: key.arn,
    }
  },
}
