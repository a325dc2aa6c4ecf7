/*
|--------------------------------------------------------------------------
| KERI messages as a CESR text stream
|--------------------------------------------------------------------------
|
| A key event log on disk or on the wire: each event's JSON serialization
| (its size is in its version string) followed by a `-A##` counter
| (controller indexed signatures, count in Base64) and that many qb64
| Sigers; the same bytes signify-ts `messagize` and keripy produce. Only
| this attachment group is read: anything else is refused.
|
*/
import { Counter, CtrDex, Siger } from './signify.js'
import { parseVersion, serialize, type Sad } from './said.js'
import type { KelEntry } from './key_events.js'

/** Thrown on a stream that is not a sequence of signed KERI JSON messages. */
export class CesrStreamError extends Error {}

/** One KERI message: the event and its indexed signatures. */
export function encodeMessage(entry: KelEntry): string {
  const counter = new Counter({ code: CtrDex.ControllerIdxSigs, count: entry.sigs.length }).qb64
  return new TextDecoder().decode(serialize(entry.event).raw) + counter + entry.sigs.join('')
}

/** A key event log as one CESR text stream. */
export function encodeStream(entries: readonly KelEntry[]): string {
  return entries.map(encodeMessage).join('')
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

function b64Int(text: string): number {
  let value = 0
  for (const char of text) {
    const digit = B64.indexOf(char)
    if (digit < 0) throw new CesrStreamError('bad Base64 count')
    value = value * 64 + digit
  }
  return value
}

/**
 * Parses a CESR text stream of KERI JSON messages, each with one `-A`
 * group of indexed signatures, into key event log entries. Throws
 * `CesrStreamError` naming the byte offset of the first problem.
 */
export function parseStream(text: string): KelEntry[] {
  const bytes = Buffer.from(text.trim(), 'utf8')
  const entries: KelEntry[] = []
  let at = 0
  while (at < bytes.length) {
    // The version string sits in the first 25 bytes of `{"v":"KERI10JSON…_"`.
    const head = bytes.subarray(at, at + 24).toString('utf8')
    const version = head.startsWith('{"v":"') ? parseVersion(head.slice(6, 23)) : undefined
    if (!version || version.size < 24 || at + version.size > bytes.length) {
      throw new CesrStreamError(`offset ${at}: not a KERI v1 JSON message`)
    }
    let event: Sad
    try {
      event = JSON.parse(bytes.subarray(at, at + version.size).toString('utf8')) as Sad
    } catch {
      throw new CesrStreamError(`offset ${at}: event is not JSON of its stated size`)
    }
    at += version.size
    const counter = bytes.subarray(at, at + 4).toString('utf8')
    if (!counter.startsWith(CtrDex.ControllerIdxSigs)) {
      throw new CesrStreamError(`offset ${at}: expected -A (controller indexed signatures)`)
    }
    const count = b64Int(counter.slice(2))
    at += 4
    const sigs: string[] = []
    for (let n = 0; n < count; n++) {
      let siger: Siger
      try {
        siger = new Siger({ qb64b: new Uint8Array(bytes.subarray(at)) })
      } catch {
        throw new CesrStreamError(`offset ${at}: not an indexed signature`)
      }
      sigs.push(siger.qb64)
      at += siger.qb64.length
    }
    entries.push({ event, sigs })
  }
  return entries
}
