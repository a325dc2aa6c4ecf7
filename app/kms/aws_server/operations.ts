/*
|--------------------------------------------------------------------------
| KMS operations of the stand-in (TrentService.<Op>)
|--------------------------------------------------------------------------
|
| Request and response members as in the AWS KMS API reference (blobs as
| base64, dates as epoch seconds, AWS JSON 1.1). Only what symmetric
| encryption keys need: key management, aliases, tags and the
| cryptographic operations Rewrap uses.
|
*/
import { AwsKmsError, validation } from '#kms/aws_server/aws_error'
import type { KeyModel, KmsKey } from '#kms/aws_server/key_model'

type Input = Record<string, unknown>
type Operation = (model: KeyModel, input: Input) => Record<string, unknown>

const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]+$/

function str(input: Input, member: string, required = true): string | undefined {
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

function blob(input: Input, member: string): Buffer {
  const text = str(input, member)!
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new AwsKmsError('SerializationException', `Unable to decode ${member}`)
  }
  return Buffer.from(text, 'base64')
}

function context(input: Input, member: string): Record<string, string> {
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

function tags(input: Input): Array<[string, string]> {
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

function lowerFirst(text: string) {
  return text[0].toLowerCase() + text.slice(1)
}

/** KeyMetadata of DescribeKey / CreateKey. */
function metadata(model: KeyModel, key: KmsKey) {
  return {
    AWSAccountId: model.account,
    KeyId: key.id,
    Arn: key.arn,
    CreationDate: key.createdAt,
    Enabled: key.state === 'Enabled',
    Description: key.description,
    KeyUsage: 'ENCRYPT_DECRYPT',
    KeyState: key.state,
    ...(key.deletionDate !== undefined
      ? { DeletionDate: key.deletionDate, PendingDeletionWindowInDays: key.pendingWindowInDays }
      : {}),
    Origin: 'AWS_KMS',
    KeyManager: 'CUSTOMER',
    CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
    KeySpec: 'SYMMETRIC_DEFAULT',
    EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
    MultiRegion: false,
  }
}

/** Limit / Marker paging as KMS does (opaque marker: the next index). */
function page<T>(items: T[], input: Input, max: number, fallback: number) {
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

function checkAliasName(name: string) {
  if (!ALIAS_NAME.test(name) || name.length > 256) {
    throw validation(
      name,
      'aliasName',
      'Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$'
    )
  }
  if (name.startsWith('alias/aws/')) {
    throw new AwsKmsError(
      'NotAuthorizedException',
      'Cannot create or update alias with reserved prefix alias/aws/'
    )
  }
}

/** The operations, by X-Amz-Target suffix. */
export const operations: Record<string, Operation> = {
  CreateKey(model, input) {
    const spec = str(input, 'KeySpec', false) ?? str(input, 'CustomerMasterKeySpec', false)
    if (spec && spec !== 'SYMMETRIC_DEFAULT') {
      throw new AwsKmsError(
        'UnsupportedOperationException',
        `${spec} is not supported by this endpoint`
      )
    }
    const key = model.create(str(input, 'Description', false) ?? '', tags(input))
    return { KeyMetadata: metadata(model, key) }
  },
  DescribeKey(model, input) {
    return { KeyMetadata: metadata(model, model.resolve(str(input, 'KeyId')!)) }
  },
  ListKeys(model, input) {
    const { slice, more } = page([...model.keys.values()], input, 1000, 100)
    return { Keys: slice.map((k) => ({ KeyId: k.id, KeyArn: k.arn })), ...more }
  },
  EnableKey(model, input) {
    const key = model.notPendingDeletion(model.resolve(str(input, 'KeyId')!, false))
    key.state = 'Enabled'
    return {}
  },
  DisableKey(model, input) {
    const key = model.notPendingDeletion(model.resolve(str(input, 'KeyId')!, false))
    key.state = 'Disabled'
    return {}
  },
  ScheduleKeyDeletion(model, input) {
    const key = model.notPendingDeletion(model.resolve(str(input, 'KeyId')!, false))
    const days = input.PendingWindowInDays === undefined ? 30 : Number(input.PendingWindowInDays)
    if (!Number.isInteger(days) || days < 7 || days > 30) {
      throw validation(
        String(input.PendingWindowInDays),
        'pendingWindowInDays',
        days < 7
          ? 'Member must have value greater than or equal to 7'
          : 'Member must have value less than or equal to 30'
      )
    }
    key.state = 'PendingDeletion'
    key.pendingWindowInDays = days
    key.deletionDate = Math.floor(model.nowSeconds()) + days * 86_400
    return {
      KeyId: key.arn,
      DeletionDate: key.deletionDate,
      KeyState: key.state,
      PendingWindowInDays: days,
    }
  },
  CancelKeyDeletion(model, input) {
    const key = model.resolve(str(input, 'KeyId')!, false)
    if (key.state !== 'PendingDeletion') {
      throw new AwsKmsError('KMSInvalidStateException', `${key.arn} is not pending deletion.`)
    }
    key.state = 'Disabled'
    key.deletionDate = undefined
    key.pendingWindowInDays = undefined
    return { KeyId: key.arn }
  },
  TagResource(model, input) {
    const key = model.notPendingDeletion(model.resolve(str(input, 'KeyId')!, false))
    for (const [k, v] of tags(input)) key.tags.set(k, v)
    return {}
  },
  UntagResource(model, input) {
    const key = model.notPendingDeletion(model.resolve(str(input, 'KeyId')!, false))
    const keys = input.TagKeys
    if (!Array.isArray(keys)) throw validation('null', 'tagKeys', 'Member must not be null')
    for (const k of keys) key.tags.delete(String(k))
    return {}
  },
  ListResourceTags(model, input) {
    const key = model.resolve(str(input, 'KeyId')!, false)
    const all = [...key.tags.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    const { slice, more } = page(all, input, 50, 50)
    return { Tags: slice.map(([TagKey, TagValue]) => ({ TagKey, TagValue })), ...more }
  },
  CreateAlias(model, input) {
    const name = str(input, 'AliasName')!
    checkAliasName(name)
    const key = model.notPendingDeletion(model.resolve(str(input, 'TargetKeyId')!, false))
    if (model.aliases.has(name)) {
      throw new AwsKmsError(
        'AlreadyExistsException',
        `An alias with the name ${model.aliasArn(name)} already exists`
      )
    }
    const now = model.nowSeconds()
    model.aliases.set(name, {
      name,
      arn: model.aliasArn(name),
      targetKeyId: key.id,
      createdAt: now,
      updatedAt: now,
    })
    return {}
  },
  UpdateAlias(model, input) {
    const name = str(input, 'AliasName')!
    checkAliasName(name)
    const alias = model.aliases.get(name)
    if (!alias)
      throw new AwsKmsError('NotFoundException', `Alias ${model.aliasArn(name)} is not found.`)
    const key = model.notPendingDeletion(model.resolve(str(input, 'TargetKeyId')!, false))
    alias.targetKeyId = key.id
    alias.updatedAt = model.nowSeconds()
    return {}
  },
  DeleteAlias(model, input) {
    const name = str(input, 'AliasName')!
    if (!model.aliases.delete(name)) {
      throw new AwsKmsError('NotFoundException', `Alias ${model.aliasArn(name)} is not found.`)
    }
    return {}
  },
  ListAliases(model, input) {
    const keyId = str(input, 'KeyId', false)
    const target = keyId ? model.resolve(keyId, false).id : undefined
    const all = [...model.aliases.values()]
      .filter((a) => !target || a.targetKeyId === target)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    const { slice, more } = page(all, input, 100, 50)
    return {
      Aliases: slice.map((a) => ({
        AliasName: a.name,
        AliasArn: a.arn,
        TargetKeyId: a.targetKeyId,
        CreationDate: a.createdAt,
        LastUpdatedDate: a.updatedAt,
      })),
      ...more,
    }
  },
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
