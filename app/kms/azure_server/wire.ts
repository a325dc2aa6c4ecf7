/*
|--------------------------------------------------------------------------
| Key Vault stand-in: JSON shapes of the keys REST API
|--------------------------------------------------------------------------
|
| As the SDK (@azure/keyvault-keys, models.ts) deserializes them:
| KeyBundle `{ key: JsonWebKey, attributes, tags }`, KeyItem
| `{ kid, attributes, tags }`, KeyListResult `{ value, nextLink }`,
| KeyOperationResult `{ kid, value }` (base64url), and errors as
| `{ "error": { "code", "message", "innererror"?: { "code" } } }`.
| Timestamps are Unix seconds.
|
*/
import type { StoredVersion } from '#kms/azure_server/key_store'

/** An error answer. */
export class AzureHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
    readonly headers: Record<string, string> = {}
  ) {
    super(message)
  }

  /** The body Key Vault sends. */
  body() {
    const error: Record<string, unknown> = { code: this.code, message: this.message }
    if (this.innerCode) error.innererror = { code: this.innerCode }
    return { error }
  }
}

/** 404 for an unknown key or version, in Key Vault's words. */
export function keyNotFound(name: string, version?: string) {
  const id = version ? `${name}/${version}` : name
  return new AzureHttpError(
    404,
    'KeyNotFound',
    `A key with (name/id) ${id} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command.`
  )
}

/** 403 for an operation on a disabled key version. */
export function keyDisabled(operation: string) {
  return new AzureHttpError(
    403,
    'Forbidden',
    `Operation ${operation} is not allowed on a disabled key.`,
    'KeyDisabled'
  )
}

/** 400 BadParameter. */
export function badParameter(message: string) {
  return new AzureHttpError(400, 'BadParameter', message)
}

/** The attributes object of a version. */
export function attributes(version: StoredVersion) {
  return {
    enabled: version.enabled,
    created: version.created,
    updated: version.updated,
    recoveryLevel: 'Recoverable+Purgeable',
    recoverableDays: 90,
    exportable: false,
  }
}

/** A KeyBundle (public material only). */
export function keyBundle(base: string, name: string, version: StoredVersion) {
  const key: Record<string, unknown> = {
    kid: `${base}/keys/${name}/${version.id}`,
    kty: version.kty,
    key_ops: version.keyOps,
  }
  if (version.rsa) {
    key.n = version.rsa.n.toString('base64url')
    key.e = version.rsa.e.toString('base64url')
  }
  return { key, attributes: attributes(version), tags: version.tags }
}

/** A KeyItem; `withVersion` for version listings (the kid then names the version). */
export function keyItem(base: string, name: string, version: StoredVersion, withVersion: boolean) {
  return {
    kid: withVersion ? `${base}/keys/${name}/${version.id}` : `${base}/keys/${name}`,
    attributes: attributes(version),
    tags: version.tags,
  }
}
