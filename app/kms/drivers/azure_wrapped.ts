/*
|--------------------------------------------------------------------------
| Wrapped DEKs of the azure-keyvault driver (pure)
|--------------------------------------------------------------------------
|
| `azure:v<N>:<key version id>:<base64url of the wrapKey result>`.
| `v<N>` is Rewrap's integer version (the `rewrap-version` tag of the Key
| Vault key version), so rows stay self-describing and the generic
| `<prefix>:vN:` parsers (kek_version, per-version scans) read it. The
| Azure version id names the exact key version to unwrap with: two Key
| Vault versions can never be confused, even if a crash left two versions
| with the same tag.
|
*/

const PATTERN = /^azure:v([1-9][0-9]{0,8}):([0-9A-Za-z]{1,64}):([A-Za-z0-9_-]+)$/

/** A parsed wrapped DEK. */
export interface AzureWrapped {
  version: number
  /** Key Vault's version id (32 hex digits in Azure). */
  versionId: string
  bytes: Buffer
}

/** Formats the result of wrapKey. */
export function formatAzureWrapped(version: number, versionId: string, bytes: Uint8Array): string {
  return `azure:v${version}:${versionId}:${Buffer.from(bytes).toString('base64url')}`
}

/** Parses a wrapped DEK; null when it is not a canonical `azure:vN:id:…` string. */
export function parseAzureWrapped(value: unknown): AzureWrapped | null {
  if (typeof value !== 'string') return null
  const match = PATTERN.exec(value)
  if (!match) return null
  const bytes = Buffer.from(match[3], 'base64url')
  if (bytes.length === 0 || bytes.toString('base64url') !== match[3]) return null
  return { version: Number(match[1]), versionId: match[2], bytes }
}
