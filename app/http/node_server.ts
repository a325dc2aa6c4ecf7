/*
|--------------------------------------------------------------------------
| Node HTTP server
|--------------------------------------------------------------------------
|
| Node's defaults let a client hold a socket for 300 s by sending a body
| slowly (or never finishing it), and check those limits only every 30 s.
| The server bin/server.ts starts has the limits of config/app.ts (`http`)
| and checks them every second.
|
*/
import { createServer, type RequestListener, type Server } from 'node:http'

/** Limits of one server, in milliseconds. */
export interface NodeServerTimeouts {
  /** Whole request (headers and body) must arrive within this. */
  requestTimeout: number
  /** Headers must arrive within this (less than requestTimeout). */
  headersTimeout: number
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeout: number
  /** How often Node checks the two limits above. */
  connectionsCheckingInterval: number
}

/**
 * A Node HTTP server for `handler` (the AdonisJS server's `handle`) that
 * enforces `timeouts`.
 */
export function createNodeServer(handler: RequestListener, timeouts: NodeServerTimeouts): Server {
  const server = createServer(
    {
      requestTimeout: timeouts.requestTimeout,
      headersTimeout: timeouts.headersTimeout,
      keepAliveTimeout: timeouts.keepAliveTimeout,
      connectionsCheckingInterval: timeouts.connectionsCheckingInterval,
    },
    handler
  )
  return server
}
