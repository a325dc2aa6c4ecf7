/*
|--------------------------------------------------------------------------
| Key, alias and tag operations of the stand-in (TrentService.<Op>)
|--------------------------------------------------------------------------
|
| Request and response members as in the AWS KMS API reference (blobs as
| base64, dates as epoch seconds, AWS JSON 1.1). Only what symmetric
| encryption keys need: key management, aliases and tags (the
| cryptographic ones are in crypto_operations.ts).
|
*/
import { AwsKmsError, validation } from '#kms/aws_server/aws_error'
import type { KeyModel, KmsKey } from '#kms/aws_server/key_model'
import { page, str, tags, type Input } from '#kms/aws_server/input'

/** One operation: the parsed request in, the response members out. */
export type Operation = (model: KeyModel, input: Input) => Record<string, unknown>

const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]+$/

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

/** Key, alias and tag operations, by X-Amz-Target suffix. */
export const keyOperations: Record<string, Operation> = {
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
}
