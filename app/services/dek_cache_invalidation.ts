/*
|--------------------------------------------------------------------------
| DEK cache invalidation across processes (Postgres LISTEN/NOTIFY)
|--------------------------------------------------------------------------
|
| A revocation (kek:retire, kek:trim, a KEK deleted: `dek-cache:flush`)
| sends one NOTIFY on the app's database, in the same transaction as its
| own record when it has one (delivered at commit, never for a rollback).
| Every process serving reads keeps one dedicated connection that LISTENs
| and empties its DEK cache on each notice; every host sharing the
| database gets it.
|
| The listener never lets a missed notice keep a revoked DEK in use: the
| cache is suspended (empty; no hits, no stores) from the moment the
| connection is lost — an error, the server closing it, or a heartbeat
| (`SELECT 1`) not answered in time — until a new connection LISTENs
| again; it reconnects with a capped backoff. The bound when a connection
| dies silently is therefore the heartbeat interval plus its timeout.
|
*/
import pg from 'pg'
import { inject } from '@adonisjs/core'
import db from '@adonisjs/lucid/services/db'
import type { QueryClientContract } from '@adonisjs/lucid/types/database'
import type { Logger } from '@adonisjs/core/logger'
import { DekCache } from '#services/dek_cache'
import { BACKGROUND_TAG } from '#services/foreground_detector'

/** The NOTIFY channel. */
export const DEK_CACHE_CHANNEL = 'rewrap_dek_cache'

/** What a notice says (no key material: a KEK name and the act). */
export interface RevocationNotice {
  kek: string | null
  action: 'retire' | 'trim' | 'delete' | 'flush'
}

/**
 * Sends a revocation notice to every listening process. Pass the act's
 * transaction so the notice goes out when (and only if) it commits.
 */
export async function notifyRevocation(
  notice: RevocationNotice,
  client: QueryClientContract = db.connection()
): Promise<void> {
  await client.rawQuery('SELECT pg_notify(?, ?)', [DEK_CACHE_CHANNEL, JSON.stringify(notice)])
}

/**
 * Empties the DEK cache of this process and of every listening one.
 */
@inject()
export class DekCacheInvalidator {
  constructor(private cache: DekCache) {}

  /** Notifies every process (at commit of `client` when it is a transaction) and this one. */
  async revoke(notice: RevocationNotice, client?: QueryClientContract): Promise<void> {
    await notifyRevocation(notice, client)
    this.cache.invalidate()
  }
}

/** Listener timing. */
export interface ListenerOptions {
  connectionString: string
  /** A `SELECT 1` on the listening connection this often (ms). */
  heartbeatMs: number
  /** …answered within this (ms), else the connection counts as lost. */
  heartbeatTimeoutMs: number
  /** First reconnect delay (ms), doubled up to `reconnectMaxMs`. */
  reconnectMinMs: number
  reconnectMaxMs: number
  logger?: Logger
}

/**
 * Keeps one LISTEN connection and invalidates the cache on each notice.
 */
export class DekCacheListener {
  #client: pg.Client | null = null
  #stopped = false
  #listening = false
  #heartbeat: NodeJS.Timeout | null = null
  #reconnect: NodeJS.Timeout | null = null
  #delay: number
  #notices = 0
  #connects = 0
  #pid: number | null = null

  constructor(
    private cache: DekCache,
    private options: ListenerOptions
  ) {
    this.#delay = options.reconnectMinMs
  }

  /** True while a connection LISTENs (the cache serves DEKs). */
  get listening(): boolean {
    return this.#listening
  }

  /** Connections that reached LISTEN so far (reconnects included). */
  get connects(): number {
    return this.#connects
  }

  /** The listening connection's backend pid (null when not connected). */
  get backendPid(): number | null {
    return this.#listening ? this.#pid : null
  }

  /** Notices received so far. */
  get notices(): number {
    return this.#notices
  }

  /**
   * Suspends the cache and connects; resolves after the first attempt
   * (connected or not: a failure keeps retrying in the background).
   */
  async start(): Promise<void> {
    this.#stopped = false
    this.cache.suspend()
    await this.#connect()
  }

  /**
   * Closes the connection; the cache stays suspended (nothing tells it
   * about revocations any more).
   */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#listening = false
    this.cache.suspend()
    if (this.#reconnect) clearTimeout(this.#reconnect)
    if (this.#heartbeat) clearInterval(this.#heartbeat)
    const client = this.#client
    this.#client = null
    await client?.end().catch(() => {})
  }

  async #connect(): Promise<void> {
    this.#reconnect = null
    if (this.#stopped) return
    const client = new pg.Client({
      connectionString: withApplicationName(this.options.connectionString, 'rewrap-bg-dek-cache'),
      keepAlive: true,
      connectionTimeoutMillis: this.options.heartbeatTimeoutMs + this.options.heartbeatMs,
    })
    this.#client = client
    client.on('error', () => this.#lost(client, 'connection error'))
    client.on('end', () => this.#lost(client, 'connection closed'))
    client.on('notification', (message) => {
      if (message.channel !== DEK_CACHE_CHANNEL) return
      this.#notices++
      this.cache.invalidate()
      this.options.logger?.info({ notice: parseNotice(message.payload) }, 'DEK cache invalidated')
    })
    try {
      await client.connect()
      await client.query(`${BACKGROUND_TAG} LISTEN ${DEK_CACHE_CHANNEL}`)
      const { rows } = await client.query(`${BACKGROUND_TAG} SELECT pg_backend_pid() AS pid`)
      this.#pid = Number(rows[0].pid)
    } catch {
      this.#lost(client, 'connect failed')
      return
    }
    if (this.#client !== client || this.#stopped) return
    this.#listening = true
    this.#connects++
    this.#delay = this.options.reconnectMinMs
    this.cache.resume()
    this.#heartbeat = setInterval(() => this.#beat(client), this.options.heartbeatMs)
    this.#heartbeat.unref()
    this.options.logger?.debug('DEK cache listener connected')
  }

  async #beat(client: pg.Client) {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), this.options.heartbeatTimeoutMs)
    })
    try {
      await Promise.race([client.query(`${BACKGROUND_TAG} SELECT 1`), timeout])
    } catch {
      this.#lost(client, 'heartbeat failed')
    } finally {
      clearTimeout(timer)
    }
  }

  /** The connection is gone: suspend the cache, drop it, reconnect later. */
  #lost(client: pg.Client, reason: string) {
    if (this.#client !== client) return
    this.#client = null
    this.#listening = false
    this.cache.suspend()
    if (this.#heartbeat) clearInterval(this.#heartbeat)
    this.#heartbeat = null
    client.end().catch(() => {})
    if (this.#stopped) return
    this.options.logger?.warn(
      { reason },
      'DEK cache listener lost; cache suspended until it reconnects'
    )
    const delay = this.#delay
    this.#delay = Math.min(this.#delay * 2, this.options.reconnectMaxMs)
    this.#reconnect = setTimeout(() => void this.#connect(), delay)
    this.#reconnect.unref()
  }
}

function parseNotice(payload: string | undefined): RevocationNotice | null {
  try {
    const value = JSON.parse(payload ?? '')
    return typeof value === 'object' && value ? (value as RevocationNotice) : null
  } catch {
    return null
  }
}

/**
 * The connection string with another `application_name` (seen in
 * pg_stat_activity; `rewrap-bg…` keeps the heartbeat out of the rewrap
 * loop's foreground detector).
 */
function withApplicationName(url: string, name: string): string {
  try {
    const parsed = new URL(url)
    parsed.searchParams.set('application_name', name)
    return parsed.toString()
  } catch {
    return url
  }
}
