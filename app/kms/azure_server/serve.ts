/*
|--------------------------------------------------------------------------
| `kms:serve --api azure-keyvault`: build the stand-in from files
|--------------------------------------------------------------------------
*/
import { readFile } from 'node:fs/promises'
import { E_KMS_CONFIG } from '#app/errors'
import { AzureKeyVaultServer } from '#kms/azure_server/azure_server'
import type { TransitLogger } from '#kms/transit_server/types'

/** What the command passes. */
export interface AzureServeOptions {
  token: string
  /** PEM files of the HTTPS listener (Key Vault clients need TLS). */
  tlsCertFile?: string
  tlsKeyFile?: string
  /** Delay added to every answer, ms (`--latency-ms`: benchmarks). */
  latencyMs?: number
  logger?: TransitLogger
}

/**
 * The Key Vault stand-in over HTTPS; E_KMS_CONFIG when the certificate
 * files are missing or unreadable (the message names the flag, not the content).
 */
export async function createAzureStandIn(options: AzureServeOptions) {
  if (!options.tlsCertFile || !options.tlsKeyFile) {
    throw new E_KMS_CONFIG([
      '--api azure-keyvault needs --tls-cert and --tls-key (PEM files): Key Vault clients only send tokens over HTTPS',
    ])
  }
  const read = async (path: string, flag: string) => {
    try {
      return await readFile(path)
    } catch (error) {
      throw new E_KMS_CONFIG([`${flag}: cannot read the file (${(error as any)?.code ?? 'error'})`])
    }
  }
  const [tlsCert, tlsKey] = await Promise.all([
    read(options.tlsCertFile, '--tls-cert'),
    read(options.tlsKeyFile, '--tls-key'),
  ])
  try {
    const server = new AzureKeyVaultServer({
      token: options.token,
      tlsCert,
      tlsKey,
      logger: options.logger,
    })
    server.latencyMs = options.latencyMs ?? 0
    return server
  } catch (error) {
    if ((error as any)?.code === 'E_KMS_CONFIG') throw error
    throw new E_KMS_CONFIG(['--tls-cert / --tls-key: not a usable PEM certificate and key'])
  }
}
