/*
|--------------------------------------------------------------------------
| Priority of this process's Postgres backends (server on the same host)
|--------------------------------------------------------------------------
|
| A background process (`rotate:kek`, `reencrypt`, `scheduler:run`) lowers
| its own CPU priority (cpu_priority.ts), but half of a rewrap's CPU is
| spent by the Postgres backends that run its UPDATEs. When the server runs
| on this host (the embedded Postgres of `npm start`, a local server) those
| backends compete with the ones serving the app's requests. Every pool
| connection of an Ace process is registered here (config/database.ts,
| `pool.afterCreate`): its backend pid is read once, and once the process
| has lowered its priority each backend is re-niced to the same value.
|
| A pid is only touched after proving it is the server end of our own TCP
| connection: a socket in /proc/net/tcp{,6} from the server's port to our
| client port whose inode is an open file of that pid. A remote server, a
| Unix socket, another network or pid namespace, or no permission (another
| user's processes need CAP_SYS_NICE): nothing is changed.
|
*/
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'
import { lowerSessionAutogroup } from '#services/autogroup'

/** What `lowerBackendPriority` did to one backend. */
export type BackendOutcome = 'lowered' | 'unchanged' | 'not-local' | 'refused'

/** One row of /proc/net/tcp or /proc/net/tcp6 (ports and the socket's inode). */
export interface TcpSocketRow {
  localPort: number
  remotePort: number
  inode: number
}

/** The pieces of a `pg` client this module reads. */
export interface PgClientLike {
  query(sql: string): Promise<{ rows: Array<Record<string, unknown>> }>
  once(event: 'end', listener: () => void): unknown
  connection?: { stream?: { localPort?: number; remotePort?: number } }
}

/**
 * Parses /proc/net/tcp or /proc/net/tcp6 text (header line first):
 * addresses are `HEXIP:HEXPORT`, the inode is the 10th column.
 */
export function parseTcpTable(text: string): TcpSocketRow[] {
  const rows: TcpSocketRow[] = []
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/)
    if (cols.length < 10) continue
    const port = (address: string) => Number.parseInt(address.split(':')[1] ?? '', 16)
    const row = { localPort: port(cols[1]), remotePort: port(cols[2]), inode: Number(cols[9]) }
    if (Number.isInteger(row.localPort) && Number.isInteger(row.remotePort) && row.inode > 0) {
      rows.push(row)
    }
  }
  return rows
}

/**
 * Inodes of the sockets that could be the server end of our connection:
 * bound to the server's port, connected to our client port.
 */
export function serverEndInodes(
  rows: TcpSocketRow[],
  serverPort: number,
  clientPort: number
): Set<number> {
  return new Set(
    rows
      .filter((row) => row.localPort === serverPort && row.remotePort === clientPort)
      .map((row) => row.inode)
  )
}

function readTcpTables(): TcpSocketRow[] {
  const rows: TcpSocketRow[] = []
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      rows.push(...parseTcpTable(readFileSync(file, 'utf8')))
    } catch {
      // No IPv6, or not Linux.
    }
  }
  return rows
}

function ownsSocket(pid: number, inodes: Set<number>): boolean {
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (match && inodes.has(Number(match[1]))) return true
    } catch {
      // An fd closed meanwhile.
    }
  }
  return false
}

/**
 * Re-nices backend `pid` to `nice` when it is the server end of `client`'s
 * TCP connection on this host (see the file header); never raises a
 * priority. The backend's session autogroup is lowered too (autogroup.ts):
 * under autogroup scheduling its nice alone does nothing.
 */
export function lowerBackendPriority(
  pid: number,
  client: PgClientLike,
  nice: number
): BackendOutcome {
  const stream = client.connection?.stream
  if (!stream?.localPort || !stream.remotePort) return 'not-local'
  try {
    const inodes = serverEndInodes(readTcpTables(), stream.remotePort, stream.localPort)
    if (inodes.size === 0 || !ownsSocket(pid, inodes)) return 'not-local'
    const lowered = getPriority(pid) < nice
    if (lowered) setPriority(pid, nice)
    // A backend leads its own session: its nice counts only within it (autogroup.ts).
    const grouped = lowerSessionAutogroup(pid, nice) === 'lowered'
    return lowered || grouped ? 'lowered' : 'unchanged'
  } catch {
    // EACCES on another user's /proc/<pid>/fd, EPERM from setpriority, ESRCH.
    return 'refused'
  }
}

/** Pool connections of this process, with their backend pids. */
const backends = new Map<PgClientLike, number>()
let backgroundNice: number | null = null

/**
 * `pool.afterCreate` of Ace processes: remembers the new connection's
 * backend pid (one query), and lowers it at once when this process already
 * runs at a background priority.
 */
export async function registerBackend(client: PgClientLike): Promise<void> {
  const { rows } = await client.query('select pg_backend_pid() as pid')
  const pid = Number(rows[0]?.pid)
  if (!Number.isInteger(pid)) return
  backends.set(client, pid)
  client.once('end', () => backends.delete(client))
  if (backgroundNice !== null) lowerBackendPriority(pid, client, backgroundNice)
}

/**
 * Lowers every registered backend (and those created later) to `nice`.
 * Answers the outcome for each backend registered so far.
 */
export function lowerRegisteredBackends(nice: number): BackendOutcome[] {
  backgroundNice = nice
  return [...backends].map(([client, pid]) => lowerBackendPriority(pid, client, nice))
}
