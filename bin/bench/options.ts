/*
|--------------------------------------------------------------------------
| Benchmark options (command line)
|--------------------------------------------------------------------------
*/
import { parseArgs } from 'node:util'

/** What one benchmark run does. */
export interface BenchOptions {
  /** Rows in the table for the main measurements. */
  rows: number
  /** Rows of the smaller measurement (RSS at a smaller scale); 0 = skip. */
  rssRows: number
  /** Rows the published algorithm really processes (the rest is extrapolated). */
  publishedRows: number
  /** Rows per seed batch. */
  seedBatch: number
  /** Foreground GET /entries/:id requests per second. */
  rate: number
  /** Foreground requests in flight at most. */
  concurrency: number
  /** Length of the idle foreground window, seconds. */
  idleSeconds: number
  /** Skip the vault-driver variant (no kms:serve child). */
  skipVault: boolean
  /** Also run `node ace rotate:kek` as a child process (its own RSS). */
  cli: boolean
  /** Skip the HOT (fillfactor, no kek_version index) floor experiment. */
  skipHot: boolean
  /** Run the rotate:kek variant from the TypeScript sources instead of the compiled build. */
  cliFromSource: boolean
  /** NODE_OPTIONS of the rotate:kek variant (the runbook's small-footprint V8 heap flags). */
  cliNodeOptions: string
  /** Extra rotate:kek flags (default none: the default throttle). */
  cliArgs: string[]
  /** Folder of the JSON results. */
  outDir: string
}

/** The runbook's V8 heap flags for background processes. */
export const DEFAULT_CLI_NODE_OPTIONS = '--max-semi-space-size=4 --max-old-space-size=128'

const HELP = `Usage: npm run bench -- [options]

  --rows N              rows for the main measurements (default 1000000)
  --rss-rows N          rows of the smaller RSS measurement, 0 to skip (default 100000)
  --published-rows N    rows the published algorithm really processes (default 20000)
  --seed-batch N        rows per seed batch (default 2000)
  --rate N              foreground GET /entries/:id per second (default 80)
  --concurrency N       foreground requests in flight at most (default 8)
  --idle-seconds N      idle foreground window (default 20)
  --skip-vault          skip the vault-driver variant
  --skip-cli            skip the rotate:kek child-process variant
  --skip-hot            skip the HOT-update floor experiment
  --cli-from-source     run rotate:kek from the TS sources (ace.js), not from
                        the compiled build (node ace build → build/ace.js)
  --cli-node-options S  NODE_OPTIONS of the rotate:kek variant (default
                        "${DEFAULT_CLI_NODE_OPTIONS}", as docs/runbook.md;
                        "" = V8's own heap sizing)
  --cli-args "FLAGS"    extra rotate:kek flags, e.g. "--nice-ratio 9 --batch-size 250"
  --out DIR             results folder (default bench-results)

Database: DATABASE_URL (used as is), else BENCH_PG_URL (admin URL: the bench
creates and drops database rewrap_bench), else an embedded PostgreSQL under ./tmp.`

/**
 * Parses the command line; prints the help and exits on --help.
 */
export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      'rows': { type: 'string' },
      'rss-rows': { type: 'string' },
      'published-rows': { type: 'string' },
      'seed-batch': { type: 'string' },
      'rate': { type: 'string' },
      'concurrency': { type: 'string' },
      'idle-seconds': { type: 'string' },
      'skip-vault': { type: 'boolean' },
      'skip-cli': { type: 'boolean' },
      'skip-hot': { type: 'boolean' },
      'cli-from-source': { type: 'boolean' },
      'cli-node-options': { type: 'string' },
      'cli-args': { type: 'string' },
      'out': { type: 'string' },
      'help': { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    process.stdout.write(HELP + '\n')
    process.exit(0)
  }
  const int = (name: string, value: string | undefined, fallback: number, min: number) => {
    if (value === undefined) return fallback
    const parsed = Number(value.replace(/_/g, ''))
    if (!Number.isInteger(parsed) || parsed < min) {
      throw new Error(`--${name} must be an integer ≥ ${min}`)
    }
    return parsed
  }
  const rows = int('rows', values['rows'], 1_000_000, 1000)
  const rssRows = int('rss-rows', values['rss-rows'], 100_000, 0)
  return {
    rows,
    rssRows: rssRows >= rows ? 0 : rssRows,
    publishedRows: Math.min(rows, int('published-rows', values['published-rows'], 20_000, 100)),
    seedBatch: int('seed-batch', values['seed-batch'], 2000, 1),
    rate: int('rate', values['rate'], 80, 1),
    concurrency: int('concurrency', values['concurrency'], 8, 1),
    idleSeconds: int('idle-seconds', values['idle-seconds'], 20, 1),
    skipVault: values['skip-vault'] ?? false,
    cli: !values['skip-cli'],
    skipHot: values['skip-hot'] ?? false,
    cliFromSource: values['cli-from-source'] ?? false,
    cliNodeOptions: values['cli-node-options'] ?? DEFAULT_CLI_NODE_OPTIONS,
    cliArgs: (values['cli-args'] ?? '').split(/\s+/).filter(Boolean),
    outDir: values['out'] ?? 'bench-results',
  }
}
