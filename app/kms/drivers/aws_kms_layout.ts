/*
|--------------------------------------------------------------------------
| How a Rewrap KEK lives in AWS KMS (pure)
|--------------------------------------------------------------------------
|
| AWS's "manual rotation": each KEK version is its own symmetric KMS key,
| tagged `rewrap:kek=<name>` and `rewrap:version=<N>`, with a version alias
| `alias/<kek>/v<N>`; the KEK alias `alias/<kek>` points at the latest
| version. The latest version is the one `alias/<kek>` targets — updating
| that alias is a rotation's commit point, and a version alias above it is
| a rotation that has not committed yet (the next rotate finishes it).
|
| Policy maps onto key states: versions below min_decryption_version are
| Disabled (retire), trimmed versions are PendingDeletion (or gone), and
| min_encryption_version is a tag on the latest version's key. Alias names
| allow `[A-Za-z0-9/_-]`: a KEK name's `_` and `.` are escaped as `_5F` and
| `_2E` (one-to-one), so `payments.v2` is `alias/payments_2Ev2`.
|
| Wrapped DEKs: `aws:v<N>:<base64 CiphertextBlob>`.
|
*/
import type { Keyring } from '#crypto/keyring'
import type { KekInfo } from '#kms/contract'
import { splitWrappedDek } from '#crypto/wrapped_dek'

/** Tag naming the KEK a key belongs to. */
export const TAG_KEK = 'rewrap:kek'
/** Tag naming the KEK version a key is. */
export const TAG_VERSION = 'rewrap:version'
/** Tag (on the latest key) holding min_encryption_version when not 0. */
export const TAG_MIN_ENCRYPTION = 'rewrap:min-encryption-version'
/** Tag (on the latest key) set while a rotation to that version is under way. */
export const TAG_ROTATING_TO = 'rewrap:rotating-to'
/** Encryption context binding every DEK to its KEK's name. */
export const CONTEXT_KEY = 'rewrap:kek'
/** Scheme of wrapped DEKs. */
export const SCHEME = 'aws'

/** KEK name → alias segment (one-to-one). */
export function aliasSegment(kek: string): string {
  return kek.replace(/_/g, '_5F').replace(/\./g, '_2E')
}

/** Alias segment → KEK name; null when not a segment this layout writes. */
export function kekFromSegment(segment: string): string | null {
  if (!/^[A-Za-z0-9-]([A-Za-z0-9-]|_5F|_2E)*$/.test(segment)) return null
  return segment.replace(/_2E/g, '.').replace(/_5F/g, '_')
}

/** `alias/<kek>`. */
export const kekAlias = (kek: string) => `alias/${aliasSegment(kek)}`

/** `alias/<kek>/v<N>`. */
export const versionAlias = (kek: string, version: number) => `${kekAlias(kek)}/v${version}`

/** The encryption context of a KEK's DEKs. */
export const encryptionContext = (kek: string) => ({ [CONTEXT_KEY]: kek })

/** `aws:vN:<base64>`. */
export function formatWrapped(version: number, blob: Uint8Array): string {
  return `${SCHEME}:v${version}:${Buffer.from(blob).toString('base64')}`
}

/** Parses `aws:vN:<base64>` strictly; null when malformed. */
export function parseWrapped(value: string): { version: number; blob: Buffer } | null {
  const split = splitWrappedDek(value)
  if (!split || split.scheme !== SCHEME) return null
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(split.body) || split.body.length % 4 !== 0) return null
  return { version: split.version, blob: Buffer.from(split.body, 'base64') }
}

/** An alias as ListAliases answers it. */
export interface AliasEntry {
  name: string
  targetKeyId?: string
}

/** Key facts DescribeKey answers. */
export interface KeyFacts {
  keyId: string
  state: string
  createdAt: Date
}

/** Aliases of one KEK, from the account's alias list. */
export interface KekAliases {
  /** Key id `alias/<kek>` targets. */
  latestKeyId?: string
  /** Version → key id, from `alias/<kek>/vN`. */
  versions: Map<number, string>
}

/** Picks one KEK's aliases out of the account's. */
export function kekAliases(kek: string, aliases: AliasEntry[]): KekAliases {
  const main = kekAlias(kek)
  const versions = new Map<number, string>()
  let latestKeyId: string | undefined
  for (const alias of aliases) {
    if (!alias.targetKeyId) continue
    if (alias.name === main) latestKeyId = alias.targetKeyId
    else if (alias.name.startsWith(`${main}/v`)) {
      const version = /^[1-9][0-9]{0,8}$/.test(alias.name.slice(main.length + 2))
        ? Number(alias.name.slice(main.length + 2))
        : 0
      if (version) versions.set(version, alias.targetKeyId)
    }
  }
  return { latestKeyId, versions }
}

/** KEK names in the account's aliases: those with both a KEK alias and a version alias. */
export function kekNames(aliases: AliasEntry[]): string[] {
  const mains = new Set<string>()
  const versioned = new Set<string>()
  for (const { name } of aliases) {
    const m = /^alias\/([^/]+)(\/v[1-9][0-9]*)?$/.exec(name)
    if (!m || name.startsWith('alias/aws/')) continue
    ;(m[2] ? versioned : mains).add(m[1])
  }
  return [...mains]
    .filter((segment) => versioned.has(segment))
    .map(kekFromSegment)
    .filter((name): name is string => name !== null)
    .sort()
}

/** A KEK as read from AWS: the contract's view plus the key ids behind it. */
export interface AwsKekState {
  info: KekInfo
  /** Version → key id (every version with an alias, trimmed ones included). */
  keyIds: Map<number, string>
  latestKeyId: string
  /** Version → key state. */
  states: Map<number, string>
  /** A version alias above the latest: a rotation that did not commit. */
  pendingVersion?: number
  /** TAG_ROTATING_TO of the latest key, if set. */
  rotatingTo?: number
}

/**
 * Assembles the contract's KekInfo from the aliases, the keys' facts and
 * the latest key's tags; null when the KEK alias or its version is unknown.
 */
export function assembleState(
  kek: string,
  aliases: KekAliases,
  facts: Map<number, KeyFacts>,
  latestTags: Map<string, string>
): AwsKekState | null {
  if (!aliases.latestKeyId) return null
  let latest = 0
  for (const [version, keyId] of aliases.versions) {
    if (keyId === aliases.latestKeyId) latest = Math.max(latest, version)
  }
  if (!latest) {
    const tagged = Number(latestTags.get(TAG_VERSION))
    if (!Number.isInteger(tagged) || tagged < 1) return null
    latest = tagged
    aliases.versions.set(latest, aliases.latestKeyId)
  }
  const known = [...aliases.versions.keys()].filter((v) => v <= latest).sort((a, b) => a - b)
  const trimmed = (v: number) => facts.get(v)?.state === 'PendingDeletion' || !facts.has(v)
  let minAvailable = known.length && known[0] > 1 ? known[0] : 0
  for (const v of known) if (trimmed(v) && v < latest) minAvailable = Math.max(minAvailable, v + 1)
  let minDecryption = Math.max(1, minAvailable)
  for (const v of known) {
    if (facts.get(v)?.state === 'Disabled' && v < latest)
      minDecryption = Math.max(minDecryption, v + 1)
  }
  const minEncryption = Number(latestTags.get(TAG_MIN_ENCRYPTION) ?? 0) || 0
  const pending = [...aliases.versions.keys()].filter((v) => v > latest).sort((a, b) => a - b)[0]
  const rotatingTo = Number(latestTags.get(TAG_ROTATING_TO)) || undefined
  const states = new Map<number, string>()
  for (const v of known) states.set(v, facts.get(v)?.state ?? 'Missing')
  return {
    info: {
      name: kek,
      versions: known
        .filter((v) => v >= minDecryption && !trimmed(v))
        .map((v) => ({ version: v, createdAt: facts.get(v)!.createdAt })),
      latestVersion: latest,
      minDecryptionVersion: minDecryption,
      minEncryptionVersion: minEncryption,
      minAvailableVersion: minAvailable,
    },
    keyIds: new Map(known.map((v) => [v, aliases.versions.get(v)!])),
    latestKeyId: aliases.latestKeyId,
    states,
    pendingVersion: pending,
    rotatingTo,
  }
}

/**
 * The KEK as a keyring of the local engine (no key material), so Vault's
 * config / trim / encryption-version rules (keyring_policy.ts) apply as is.
 */
export function policyRing(info: KekInfo): Keyring {
  const versions: Keyring['versions'] = {}
  for (const { version, createdAt } of info.versions) {
    versions[version] = { key: Buffer.alloc(0), createdAt: createdAt.getTime() / 1000 }
  }
  return {
    name: info.name,
    type: 'aes256-gcm96',
    versions,
    latestVersion: info.latestVersion,
    minDecryptionVersion: info.minDecryptionVersion,
    minEncryptionVersion: info.minEncryptionVersion,
    minAvailableVersion: info.minAvailableVersion,
    deletionAllowed: false,
  }
}
