/*
|--------------------------------------------------------------------------
| Fault toolkit: a TCP proxy that misbehaves on cue
|--------------------------------------------------------------------------
|
| Sits between the app (or a child process) and PostgreSQL or the KMS:
| point the client at `proxy.port` instead of the server's. On cue it adds
| latency to every chunk, resets or closes every connection, refuses new
| ones, or partitions the network (holds every byte, both ways, until
| healed — TCP's view of a black hole: nothing arrives, nothing fails).
|
*/
import { createServer, connect, type Server, type Socket } from 'node:net'

/** One proxied connection (client side and server side). */
interface Pipe {
  client: Socket
  upstream: Socket
}

/** Delays chunks to one socket, keeping their order. */
class DelayedWriter {
  #queue: Array<{ due: number; chunk: Buffer }> = []
  #timer: NodeJS.Timeout | null = null

  constructor(private target: Socket) {}

  push(chunk: Buffer, latencyMs: number) {
    if (latencyMs <= 0 && this.#queue.length === 0) {
      if (!this.target.destroyed) this.target.write(chunk)
      return
    }
    const last = this.#queue[this.#queue.length - 1]?.due ?? 0
    this.#queue.push({ due: Math.max(Date.now() + latencyMs, last), chunk })
    this.#pump()
  }

  #pump() {
    if (this.#timer) return
    const head = this.#queue[0]
    if (!head) return
    this.#timer = setTimeout(
      () => {
        this.#timer = null
        const now = Date.now()
        while (this.#queue.length > 0 && this.#queue[0].due <= now) {
          const { chunk } = this.#queue.shift()!
          if (!this.target.destroyed) this.target.write(chunk)
        }
        this.#pump()
      },
      Math.max(0, head.due - Date.now())
    )
  }

  clear() {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    this.#queue = []
  }
}

/**
 * A TCP proxy to `target` on a free loopback port, with faults on cue.
 */
export class FaultyProxy {
  /** Milliseconds added to every chunk, both ways. */
  latencyMs = 0
  /** Connections accepted so far. */
  accepted = 0

  #server: Server
  #pipes = new Set<Pipe>()
  #refusing = false
  #partitioned = false
  #waiting: Array<() => void> = []

  private constructor(
    private target: { host: string; port: number },
    server: Server
  ) {
    this.#server = server
  }

  /** Starts a proxy to `host:port`. */
  static async start(target: { host?: string; port: number }): Promise<FaultyProxy> {
    const server = createServer()
    const proxy = new FaultyProxy({ host: target.host ?? '127.0.0.1', port: target.port }, server)
    server.on('connection', (socket) => proxy.#accept(socket))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    return proxy
  }

  /** The proxy's port. */
  get port(): number {
    const address = this.#server.address()
    return typeof address === 'object' && address ? address.port : 0
  }

  /** Connections open right now. */
  get open(): number {
    return this.#pipes.size
  }

  /** `url` with its host and port replaced by the proxy's. */
  rewrite(url: string): string {
    const parsed = new URL(url)
    parsed.hostname = '127.0.0.1'
    parsed.port = String(this.port)
    return parsed.toString()
  }

  /** New connections are reset at once (open ones are left alone) while true. */
  refuse(on = true) {
    this.#refusing = on
  }

  /**
   * Holds every byte of every connection (open and new) until `heal()`:
   * nothing arrives, nothing fails — a network partition.
   */
  partition() {
    this.#partitioned = true
    for (const pipe of this.#pipes) {
      pipe.client.pause()
      pipe.upstream.pause()
    }
  }

  /** Ends a partition: held bytes flow again. */
  heal() {
    this.#partitioned = false
    for (const pipe of this.#pipes) {
      pipe.client.resume()
      pipe.upstream.resume()
    }
    const waiting = this.#waiting
    this.#waiting = []
    for (const go of waiting) go()
  }

  /** Resets (RST) every open connection, both sides; answers how many. */
  resetAll(): number {
    const count = this.#pipes.size
    for (const pipe of [...this.#pipes]) this.#drop(pipe, true)
    return count
  }

  /** Closes (FIN) every open connection, both sides; answers how many. */
  closeAll(): number {
    const count = this.#pipes.size
    for (const pipe of [...this.#pipes]) this.#drop(pipe, false)
    return count
  }

  /** Stops listening and resets every connection. */
  async close(): Promise<void> {
    this.heal()
    this.resetAll()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #accept(client: Socket) {
    this.accepted++
    if (this.#refusing) return void client.resetAndDestroy()
    client.pause()
    const go = () => {
      const upstream = connect(this.target.port, this.target.host)
      const pipe: Pipe = { client, upstream }
      this.#pipes.add(pipe)
      const toUpstream = new DelayedWriter(upstream)
      const toClient = new DelayedWriter(client)
      client.on('data', (chunk) => toUpstream.push(chunk, this.latencyMs))
      upstream.on('data', (chunk) => toClient.push(chunk, this.latencyMs))
      const end = () => {
        toUpstream.clear()
        toClient.clear()
        this.#drop(pipe, false)
      }
      client.on('error', end)
      upstream.on('error', end)
      client.on('close', end)
      upstream.on('close', end)
      if (this.#partitioned) upstream.pause()
      else client.resume()
    }
    // A connection opened during a partition gets no answer until it heals.
    if (this.#partitioned) this.#waiting.push(go)
    else go()
  }

  #drop(pipe: Pipe, reset: boolean) {
    if (!this.#pipes.delete(pipe)) return
    for (const socket of [pipe.client, pipe.upstream]) {
      if (socket.destroyed) continue
      if (reset && socket.readyState !== 'opening') socket.resetAndDestroy()
      else socket.destroy()
    }
  }
}
