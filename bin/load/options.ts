/*
|--------------------------------------------------------------------------
| Load harness options (command line)
|--------------------------------------------------------------------------
*/
import { parseArgs } from 'node:util'
import {
  exitWithHelpIfAsked,
  HELP_OPTION,
  intListOption,
  intOption as int,
  wordsOption,
} from '../bench/cli_options.js'

/** What one load run does. */
export interface LoadOptions {
  /** Rows seeded before the phases (the rotation moves all of them). */
  rows: number
  /** Rows per seed batch. */
  seedBatch: number
  /** Requests/s of the mix, over all connections. */
  rate: number
  /** Connections (requests in flight at most). */
  connections: number
  /** Share of entry reads, writes (POST) and updates (PUT), in percent. */
  mix: { reads: number; writes: number; updates: number }
  /** Unmeasured warm-up, seconds. */
  warmupSeconds: number
  /** The idle phase (the mix with nothing else running), seconds. */
  idleSeconds: number
  /** The rotation phase at most, seconds: the rotation is stopped beyond. */
  maxSeconds: number
  /** Seed of the mix's random choices. */
  seed: number
  /** Extra rotate:kek flags (default none: the default throttle). */
  rotateArgs: string[]
  /** Folder of the JSON results. */
  outDir: string
}

const HELP = `Usage: npm run load -- [options]

  --rows N             rows seeded, all rotated (default 200000)
  --rate N             requests/s of the mix, over all connections (default 100)
  --connections N      requests in flight at most (default 8)
  --mix R,W,U          percent of entry reads (GET), writes (POST), updates (PUT)
                       (default 70,10,20)
  --warmup-seconds N   unmeasured warm-up (default 5)
  --idle-seconds N     the mix alone (default 30)
  --max-seconds N      the rotation phase at most; the rotation is stopped
                       beyond and the run reported unfinished (default 900)
  --seed N             seed of the mix's random choices (default 1)
  --seed-batch N       rows per seed batch (default 2000)
  --rotate-args="FLAGS" extra rotate:kek flags, e.g. --rotate-args="--nice-ratio 0"
  --out DIR            results folder (default bench-results)

Loopback only: the HTTP server is started on 127.0.0.1. Database as npm run
bench: DATABASE_URL (used as is), else BENCH_PG_URL (an admin URL: the
database rewrap_bench is created and dropped), else an embedded PostgreSQL.`

/** Parses the command line; prints the help and exits on --help. */
export function parseLoadOptions(argv: string[]): LoadOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      'rows': { type: 'string' },
      'rate': { type: 'string' },
      'connections': { type: 'string' },
      'mix': { type: 'string' },
      'warmup-seconds': { type: 'string' },
      'idle-seconds': { type: 'string' },
      'max-seconds': { type: 'string' },
      'seed': { type: 'string' },
      'seed-batch': { type: 'string' },
      'rotate-args': { type: 'string' },
      'out': { type: 'string' },
      ...HELP_OPTION,
    },
  })
  exitWithHelpIfAsked(values.help, HELP)
  const shares = intListOption('mix', values['mix'] ?? '70,10,20', 0)
  if (shares.length !== 3 || shares[0] + shares[1] + shares[2] !== 100) {
    throw new Error('--mix must be three percentages (reads, writes, updates) adding up to 100')
  }
  return {
    rows: int('rows', values['rows'], 200_000, 1000),
    seedBatch: int('seed-batch', values['seed-batch'], 2000, 1),
    rate: int('rate', values['rate'], 100, 1),
    connections: int('connections', values['connections'], 8, 1),
    mix: { reads: shares[0], writes: shares[1], updates: shares[2] },
    warmupSeconds: int('warmup-seconds', values['warmup-seconds'], 5, 0),
    idleSeconds: int('idle-seconds', values['idle-seconds'], 30, 1),
    maxSeconds: int('max-seconds', values['max-seconds'], 900, 1),
    seed: int('seed', values['seed'], 1, 0),
    rotateArgs: wordsOption(values['rotate-args']),
    outDir: values['out'] ?? 'bench-results',
  }
}
