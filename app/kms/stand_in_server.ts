/*
|--------------------------------------------------------------------------
| Listening and stopping, shared by the KMS stand-ins of `kms:serve`
|--------------------------------------------------------------------------
|
| The AWS KMS and Azure Key Vault stand-ins wrap a node:http / node:https
| server the same way: its base URL once listening, a listen that rejects
| on EADDRINUSE, a close that drops open connections.
|
*/
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** `<scheme>://host:port` of a listening server (IPv6 hosts bracketed). */
export function serverUrl(server: Server, scheme: 'http' | 'https'): string {
  const address = server.address() as AddressInfo | null
  if (!address) throw new Error('the server is not listening')
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `${scheme}://${host}:${address.port}`
}

/** Starts listening; rejects with the listen error (e.g. EADDRINUSE). */
export function listenOn(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

/** Stops listening and drops open connections. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}
