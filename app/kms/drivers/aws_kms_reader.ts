/*
|--------------------------------------------------------------------------
| Reading a KEK out of AWS KMS (aws-kms driver)
|--------------------------------------------------------------------------
|
| ListAliases (paged) → the KEK's aliases; DescribeKey per version → states
| and creation dates; ListResourceTags on the latest key → policy tags;
| assembled by aws_kms_layout.ts. Key id → version is remembered (a key's
| version never changes), so answers naming a key (Encrypt's KeyId) map to
| a version without another read.
|
*/
import {
  DescribeKeyCommand,
  ListAliasesCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
} from '@aws-sdk/client-kms'
import type { KekInfo } from '#kms/contract'
import { kmsError } from '#kms/error_codes'
import type { AwsKmsCalls } from '#kms/drivers/aws_kms_calls'
import {
  assembleState,
  kekAliases,
  TAG_KEK,
  TAG_VERSION,
  versionAlias,
  type AliasEntry,
  type AwsKekState,
  type KeyFacts,
} from '#kms/drivers/aws_kms_layout'

/**
 * Reads KEKs; runs lists of calls with bounded concurrency.
 */
export class AwsKekReader {
  /** Key id → version, learned from reads. */
  readonly versionOfKey = new Map<string, number>()
  /** KEK → version → key id, learned from reads (a version's key never changes). */
  readonly keyIdsOf = new Map<string, Map<number, string>>()

  constructor(
    private calls: AwsKmsCalls,
    private concurrency: number
  ) {}

  /** At most `concurrency` in flight; the first thrown error stops new work and is thrown. */
  async each<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
    const results = new Array<R>(items.length)
    let next = 0
    let failed = false
    const worker = async () => {
      while (!failed && next < items.length) {
        const index = next++
        try {
          results[index] = await fn(items[index])
        } catch (error) {
          failed = true
          throw error
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.concurrency, items.length) }, worker))
    return results
  }

  /** A key tagged as this KEK's version (not pending deletion), if any: the account's keys are scanned. */
  async findVersionKey(name: string, version: number): Promise<string | undefined> {
    let marker: string | undefined
    do {
      const page = await this.calls.send<{
        Keys?: Array<{ KeyId?: string }>
        NextMarker?: string
        Truncated?: boolean
      }>(name, new ListKeysCommand({ Limit: 1000, Marker: marker }))
      for (const { KeyId } of page.Keys ?? []) {
        if (!KeyId) continue
        const tags = await this.tags(name, KeyId)
        if (tags.get(TAG_KEK) !== name || tags.get(TAG_VERSION) !== String(version)) continue
        const facts = await this.facts(name, KeyId)
        if (facts && facts.state !== 'PendingDeletion') return KeyId
      }
      marker = page.Truncated ? page.NextMarker : undefined
    } while (marker)
    return undefined
  }

  async read(name: string): Promise<AwsKekState | null> {
    const aliases = kekAliases(name, await this.aliases(name))
    if (!aliases.latestKeyId) return null
    const facts = new Map<number, KeyFacts>()
    const entries = [...aliases.versions]
    await this.each(entries, async ([version, keyId]) => {
      const fact = await this.facts(name, keyId)
      if (fact) facts.set(version, fact)
    })
    const tags = await this.tags(name, aliases.latestKeyId)
    const state = assembleState(name, aliases, facts, tags)
    if (state) {
      for (const [version, keyId] of state.keyIds) this.versionOfKey.set(keyId, version)
      this.keyIdsOf.set(name, new Map(state.keyIds))
    }
    return state
  }

  async info(name: string): Promise<KekInfo> {
    const state = await this.mustRead(name)
    return state.info
  }

  /** The key `alias/<kek>/v<N>` names, if that alias exists. */
  async versionAliasTarget(name: string, version: number): Promise<string | undefined> {
    const aliases = await this.aliases(name)
    return aliases.find((a) => a.name === versionAlias(name, version))?.targetKeyId
  }

  async mustRead(name: string): Promise<AwsKekState> {
    const state = await this.read(name)
    if (!state) throw kmsError('E_KEK_NOT_FOUND', 'unknown key', name)
    return state
  }

  /** Every alias of the account (`kek` only names the KEK in errors). */
  async aliases(kek: string): Promise<AliasEntry[]> {
    const out: AliasEntry[] = []
    let marker: string | undefined
    do {
      const page = await this.calls.send<{
        Aliases?: Array<{ AliasName?: string; TargetKeyId?: string }>
        NextMarker?: string
        Truncated?: boolean
      }>(kek, new ListAliasesCommand({ Limit: 100, Marker: marker }))
      for (const alias of page.Aliases ?? []) {
        if (alias.AliasName) out.push({ name: alias.AliasName, targetKeyId: alias.TargetKeyId })
      }
      marker = page.Truncated ? page.NextMarker : undefined
    } while (marker)
    return out
  }

  async facts(name: string, keyId: string): Promise<KeyFacts | null> {
    try {
      const out = await this.calls.send<{
        KeyMetadata?: { KeyState?: string; CreationDate?: Date }
      }>(name, new DescribeKeyCommand({ KeyId: keyId }))
      return {
        keyId,
        state: out.KeyMetadata?.KeyState ?? 'Missing',
        // Whole seconds, as the other drivers report creation times.
        createdAt: new Date(
          Math.floor((out.KeyMetadata?.CreationDate?.getTime() ?? 0) / 1000) * 1000
        ),
      }
    } catch (error) {
      if ((error as any)?.code === 'E_KEK_NOT_FOUND') return null
      throw error
    }
  }

  async tags(name: string, keyId: string): Promise<Map<string, string>> {
    const tags = new Map<string, string>()
    let marker: string | undefined
    do {
      const page = await this.calls.send<{
        Tags?: Array<{ TagKey?: string; TagValue?: string }>
        NextMarker?: string
        Truncated?: boolean
      }>(name, new ListResourceTagsCommand({ KeyId: keyId, Marker: marker }))
      for (const tag of page.Tags ?? []) if (tag.TagKey) tags.set(tag.TagKey, tag.TagValue ?? '')
      marker = page.Truncated ? page.NextMarker : undefined
    } while (marker)
    return tags
  }

  /** Version of the key an answer names (an ARN or id); reads the KEK when not yet known. */
  async versionOf(name: string, keyRef: string | undefined): Promise<number> {
    const keyId = keyRef?.split('/').pop() ?? ''
    let version = this.versionOfKey.get(keyId)
    if (!version) {
      await this.read(name)
      version = this.versionOfKey.get(keyId)
    }
    if (!version) throw kmsError('E_KMS_REJECTED', 'AWS KMS answered an unexpected result', name)
    return version
  }
}
