/*
|--------------------------------------------------------------------------
| Key Vault key versions → Rewrap integer versions (pure)
|--------------------------------------------------------------------------
|
| Key Vault names versions with opaque ids. Rewrap tags each version it
| creates with `rewrap-version=N` (N = 1 + the highest N of the key), so the
| mapping is stored with the versions themselves: stable, readable by any
| process, and rebuilt by listing the versions. Versions without the tag
| (made in the portal, or by an Azure rotation policy) are not Rewrap
| versions: never wrapped with, reported as `foreign`.
|
| A crash or a retry can leave two versions with one N (a create that
| landed after its response was lost): both keep working for unwrap, since
| wrapped DEKs name the exact version id; the earliest-created one (then the
| lower id) is the one new wraps use.
|
| Retirement is `enabled=false` on the versions below min_decryption_version,
| so min_decryption_version is derived: the lowest M such that every version
| ≥ M is enabled.
|
*/
import type { KekInfo } from '#kms/contract'

/** Tag holding Rewrap's integer version. */
export const VERSION_TAG = 'rewrap-version'
/** Tag holding the KEK name (for people reading the vault). */
export const KEK_TAG = 'rewrap-kek'

/** What Key Vault says about one key version (KeyProperties, trimmed). */
export interface KeyVersionProperties {
  /** Key Vault's version id. */
  version?: string
  tags?: Record<string, string>
  createdOn?: Date
  enabled?: boolean
}

/** One Key Vault version mapped to a Rewrap version. */
export interface MappedVersion {
  version: number
  versionId: string
  createdAt: Date
  enabled: boolean
}

/** The versions of one key, as Rewrap sees them. */
export interface VersionMap {
  /** Canonical version per N, ascending. */
  versions: MappedVersion[]
  /** Every tagged version, duplicates included (by version id). */
  byId: Map<string, MappedVersion>
  /** Versions without a valid tag. */
  foreign: number
  latestVersion: number
  minDecryptionVersion: number
}

/** Parses a `rewrap-version` tag value; null unless a positive integer. */
export function tagVersion(tags: Record<string, string> | undefined): number | null {
  const raw = tags?.[VERSION_TAG]
  if (typeof raw !== 'string' || !/^[1-9][0-9]{0,8}$/.test(raw)) return null
  return Number(raw)
}

/** Builds the map from a key's listed versions (any order). */
export function mapVersions(items: KeyVersionProperties[]): VersionMap {
  const byId = new Map<string, MappedVersion>()
  const canonical = new Map<number, MappedVersion>()
  let foreign = 0
  for (const item of items) {
    const version = tagVersion(item.tags)
    if (version === null || !item.version) {
      foreign++
      continue
    }
    const mapped: MappedVersion = {
      version,
      versionId: item.version,
      createdAt: item.createdOn ?? new Date(0),
      enabled: item.enabled !== false,
    }
    byId.set(mapped.versionId, mapped)
    const current = canonical.get(version)
    if (!current || earlier(mapped, current)) canonical.set(version, mapped)
  }
  const versions = [...canonical.values()].sort((a, b) => a.version - b.version)
  const latestVersion = versions.at(-1)?.version ?? 0
  let minDecryptionVersion = 1
  for (const mapped of byId.values()) {
    if (!mapped.enabled) minDecryptionVersion = Math.max(minDecryptionVersion, mapped.version + 1)
  }
  return { versions, byId, foreign, latestVersion, minDecryptionVersion }
}

function earlier(a: MappedVersion, b: MappedVersion) {
  const delta = a.createdAt.getTime() - b.createdAt.getTime()
  return delta < 0 || (delta === 0 && a.versionId < b.versionId)
}

/** The contract's view of a key (no trim in Key Vault: minAvailableVersion 0). */
export function toKekInfo(name: string, map: VersionMap): KekInfo {
  return {
    name,
    versions: map.versions
      .filter((v) => v.version >= map.minDecryptionVersion)
      .map((v) => ({ version: v.version, createdAt: v.createdAt })),
    latestVersion: map.latestVersion,
    minDecryptionVersion: map.minDecryptionVersion,
    minEncryptionVersion: 0,
    minAvailableVersion: 0,
  }
}

/**
 * The enable/disable changes that make min_decryption_version `min`:
 * every tagged version below it disabled, every one at or above enabled.
 */
export function retirementChanges(
  map: VersionMap,
  min: number
): Array<{ versionId: string; enabled: boolean }> {
  const changes: Array<{ versionId: string; enabled: boolean }> = []
  for (const mapped of map.byId.values()) {
    const enabled = mapped.version >= min
    if (mapped.enabled !== enabled) changes.push({ versionId: mapped.versionId, enabled })
  }
  // Enable first: an interrupted unretire never leaves fewer versions usable than before.
  return changes.sort((a, b) => Number(b.enabled) - Number(a.enabled))
}
