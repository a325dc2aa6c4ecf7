/*
|--------------------------------------------------------------------------
| Creating and rotating a KEK in AWS KMS (aws-kms driver, Step A)
|--------------------------------------------------------------------------
|
| Each version is a new symmetric KMS key (CreateKey with its tags), then
| its version alias, then the KEK alias moved onto it (UpdateAlias: the
| commit point). See `rotate` for why this is exactly once.
|
*/
import {
  CreateAliasCommand,
  CreateKeyCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms'
import { E_KEK_EXISTS } from '#app/errors'
import type { KekInfo } from '#kms/contract'
import { kmsError } from '#kms/error_codes'
import { codeOf, detailOf, type AwsKmsCalls } from '#kms/drivers/aws_kms_calls'
import type { AwsKekReader } from '#kms/drivers/aws_kms_reader'
import {
  kekAlias,
  TAG_KEK,
  TAG_MIN_ENCRYPTION,
  TAG_ROTATING_TO,
  TAG_VERSION,
  versionAlias,
} from '#kms/drivers/aws_kms_layout'

const KEY_DESCRIPTION = (kek: string, version: number) => `Rewrap KEK ${kek} version ${version}`

/**
 * Creates KEKs and adds their versions.
 */
export class AwsKekVersions {
  constructor(
    private calls: AwsKmsCalls,
    private reader: AwsKekReader
  ) {}

  /** createKey: version 1's key, its version alias, the KEK alias. */
  async create(name: string): Promise<KekInfo> {
    if (await this.reader.read(name)) throw new E_KEK_EXISTS([name])
    const keyId = await this.#createVersionKey(name, 1, 0)
    try {
      await this.calls.raw(
        new CreateAliasCommand({ AliasName: versionAlias(name, 1), TargetKeyId: keyId })
      )
      await this.calls.raw(
        new CreateAliasCommand({ AliasName: kekAlias(name), TargetKeyId: keyId })
      )
    } catch (error) {
      if ((error as Error)?.name === 'AlreadyExistsException') throw new E_KEK_EXISTS([name])
      throw kmsError(codeOf(error), detailOf(error), name)
    }
    return this.reader.info(name)
  }

  /**
   * Adds version N+1. Exactly once across crashes and retries: the
   * latest key is tagged `rewrap:rotating-to=N+1` before CreateKey, so a
   * rotate that finds that tag first looks for the key a failed attempt
   * made (tagged with the KEK and N+1) and reuses it; a version alias
   * `…/v(N+1)` without the KEK alias on it is a rotation that failed
   * before its commit (UpdateAlias) and is finished, not repeated.
   */
  async rotate(name: string): Promise<KekInfo> {
    const state = await this.reader.mustRead(name)
    const next = state.info.latestVersion + 1
    let keyId: string | undefined
    if (state.pendingVersion === next) {
      keyId = await this.reader.versionAliasTarget(name, next)
    }
    if (!keyId && state.rotatingTo === next) keyId = await this.reader.findVersionKey(name, next)
    if (!keyId) {
      await this.calls.send(
        name,
        new TagResourceCommand({
          KeyId: state.latestKeyId,
          Tags: [{ TagKey: TAG_ROTATING_TO, TagValue: String(next) }],
        })
      )
      keyId = await this.#createVersionKey(name, next, state.info.minEncryptionVersion)
    }
    if (state.pendingVersion !== next) {
      try {
        await this.calls.raw(
          new CreateAliasCommand({ AliasName: versionAlias(name, next), TargetKeyId: keyId })
        )
      } catch (error) {
        if ((error as Error)?.name !== 'AlreadyExistsException') {
          throw kmsError(codeOf(error), detailOf(error), name)
        }
        // Another attempt got there first: use the key that alias names.
        keyId = (await this.reader.versionAliasTarget(name, next)) ?? keyId
      }
    }
    await this.calls.send(
      name,
      new UpdateAliasCommand({ AliasName: kekAlias(name), TargetKeyId: keyId })
    )
    await this.calls
      .send(
        name,
        new UntagResourceCommand({ KeyId: state.latestKeyId, TagKeys: [TAG_ROTATING_TO] })
      )
      .catch(() => {}) // cosmetic: a stale marker only makes the next rotate look first
    return this.reader.info(name)
  }

  async #createVersionKey(name: string, version: number, minEncryption: number): Promise<string> {
    const tags = [
      { TagKey: TAG_KEK, TagValue: name },
      { TagKey: TAG_VERSION, TagValue: String(version) },
    ]
    if (minEncryption) tags.push({ TagKey: TAG_MIN_ENCRYPTION, TagValue: String(minEncryption) })
    const out = await this.calls.send<{ KeyMetadata?: { KeyId?: string } }>(
      name,
      new CreateKeyCommand({
        Description: KEY_DESCRIPTION(name, version),
        KeyUsage: 'ENCRYPT_DECRYPT',
        KeySpec: 'SYMMETRIC_DEFAULT',
        Tags: tags,
      }),
      false
    )
    const keyId = out.KeyMetadata?.KeyId
    if (!keyId) throw kmsError('E_KMS_REJECTED', 'AWS KMS answered an unexpected result', name)
    this.reader.versionOfKey.set(keyId, version)
    return keyId
  }
}
