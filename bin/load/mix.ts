/*
|--------------------------------------------------------------------------
| The request mix: entry reads, writes and updates
|--------------------------------------------------------------------------
|
| One autocannon request whose `setupRequest` picks, from a seeded PRNG,
| GET /entries/:id (a random seeded id), POST /entries (a new entry under
| the KEK) or PUT /entries/:id (a random seeded id, new data). Counts what
| it built, per kind. Pure apart from its own counters.
|
*/
import type autocannon from 'autocannon'

/** Kinds of request of the mix. */
export type MixKind = 'reads' | 'writes' | 'updates'

/** What the mix needs to know. */
export interface MixTarget {
  kek: string
  ids: { minId: number; maxId: number }
  shares: Record<MixKind, number>
  seed: number
}

/** mulberry32: a small seeded PRNG, [0, 1). */
export function prng(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/**
 * The mix: `request` for autocannon's `requests`, `built` the requests
 * built so far per kind (autocannon builds one per request it sends).
 */
export function requestMix(target: MixTarget) {
  const random = prng(target.seed)
  const built: Record<MixKind, number> = { reads: 0, writes: 0, updates: 0 }
  const span = target.ids.maxId - target.ids.minId + 1
  const id = () => target.ids.minId + Math.floor(random() * span)
  const data = () => ({ note: 'load', n: Math.floor(random() * 1e9) })
  const pick = (): MixKind => {
    const roll = random() * 100
    if (roll < target.shares.reads) return 'reads'
    if (roll < target.shares.reads + target.shares.writes) return 'writes'
    return 'updates'
  }
  // A fresh headers object per request: autocannon writes Content-Length into the one it is
  // given, and a stale one on a later GET would make the server wait for a body that never comes.
  const fresh = (req: autocannon.Request) => {
    const headers = { ...req.headers }
    for (const name of Object.keys(headers)) {
      if (name.toLowerCase() === 'content-length') delete headers[name]
    }
    return headers
  }
  const request: autocannon.Request = {
    setupRequest: (req) => {
      const kind = pick()
      built[kind]++
      const headers = fresh(req)
      if (kind === 'reads') {
        return { ...req, headers, method: 'GET', path: `/entries/${id()}`, body: undefined }
      }
      if (kind === 'writes') {
        const body = JSON.stringify({ kek: target.kek, data: data() })
        return { ...req, headers, method: 'POST', path: '/entries', body }
      }
      const body = JSON.stringify({ data: data() })
      return { ...req, headers, method: 'PUT', path: `/entries/${id()}`, body }
    },
  }
  return { request, built }
}
