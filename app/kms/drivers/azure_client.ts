/*
|--------------------------------------------------------------------------
| Key Vault SDK clients for the azure-keyvault driver
|--------------------------------------------------------------------------
|
| One KeyClient and one CryptographyClient per key version (each asks for
| the key once, then wraps / unwraps remotely: RSA-OAEP-256 and A256KW are
| never done locally by the SDK). The SDK's own retry policy is switched
| off (maxRetries 0): the driver retries itself, with its budget, its
| idempotency rules and an injectable sleep.
|
| Credentials: DefaultAzureCredential unless a token is configured (a
| static bearer token: for the local stand-in and tests, never Azure).
| `ca` trusts an extra certificate authority for this client only (the
| stand-in's test CA) through a Node https.Agent set on every request.
|
*/
import { Agent } from 'node:https'
import { CryptographyClient, KeyClient, type KeyClientOptions } from '@azure/keyvault-keys'

/** The SDK's credential type (from @azure/core-auth, through the client's signature). */
export type TokenCredential = ConstructorParameters<typeof KeyClient>[1]
type PipelinePolicy = NonNullable<KeyClientOptions['additionalPolicies']>[number]['policy']

/** What the clients need. */
export interface AzureClientOptions {
  vaultUrl: string
  /** A static bearer token (stand-in / tests); else DefaultAzureCredential. */
  token?: string
  /** Or a credential of your own. */
  credential?: TokenCredential
  /** PEM of an extra CA to trust (the stand-in's); system CAs otherwise. */
  ca?: string
  /** Accept a challenge resource other than *.vault.azure.net (the stand-in). */
  disableChallengeResourceVerification?: boolean
}

/** A credential that always answers one token (for the stand-in and tests). */
export function staticTokenCredential(token: string): TokenCredential {
  return {
    getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 60 * 60 * 1000 }),
  }
}

/** Sets a Node agent (extra CA, keep-alive) on every request. */
function agentPolicy(agent: Agent): PipelinePolicy {
  return {
    name: 'rewrapHttpsAgent',
    sendRequest(request, next) {
      request.agent = agent
      return next(request)
    },
  }
}

/** The clients of one vault. */
export class AzureClients {
  readonly keys: KeyClient
  #credential: TokenCredential
  #options: KeyClientOptions
  #crypto = new Map<string, CryptographyClient>()
  #agent?: Agent

  private constructor(options: AzureClientOptions, credential: TokenCredential) {
    this.#credential = credential
    this.#agent = options.ca
      ? new Agent({ ca: options.ca, keepAlive: true, maxSockets: 64 })
      : undefined
    this.#options = {
      retryOptions: { maxRetries: 0 },
      disableChallengeResourceVerification: options.disableChallengeResourceVerification,
      additionalPolicies: this.#agent
        ? [{ policy: agentPolicy(this.#agent), position: 'perCall' }]
        : [],
      // Never log headers or bodies (DEKs travel in wrap/unwrap bodies).
      userAgentOptions: { userAgentPrefix: 'rewrap' },
    }
    this.keys = new KeyClient(options.vaultUrl, credential, this.#options)
  }

  /** Builds the clients; DefaultAzureCredential is loaded only when used. */
  static async create(options: AzureClientOptions): Promise<AzureClients> {
    let credential = options.credential
    if (!credential && options.token) credential = staticTokenCredential(options.token)
    if (!credential) {
      const { DefaultAzureCredential } = await import('@azure/identity')
      credential = new DefaultAzureCredential()
    }
    return new AzureClients(options, credential)
  }

  /** The CryptographyClient of one key version (cached). */
  crypto(name: string, versionId: string): CryptographyClient {
    const id = `${this.keys.vaultUrl.replace(/\/+$/, '')}/keys/${encodeURIComponent(name)}/${versionId}`
    let client = this.#crypto.get(id)
    if (!client) {
      client = new CryptographyClient(id, this.#credential, this.#options)
      this.#crypto.set(id, client)
    }
    return client
  }

  /** Releases sockets. */
  close() {
    this.#crypto.clear()
    this.#agent?.destroy()
  }
}
