/*
|--------------------------------------------------------------------------
| Benchmark options (command line)
|--------------------------------------------------------------------------
*/
import { parseArgs } from 'node:util'
import {
  exitWithHelpIfAsked,
  HELP_OPTION,
  intListOption,
  intOption as int,
  wordsOption,
} from './cli_options.js'

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
  /** Skip the cloud-driver rows (aws-kms, azure-keyvault against their stand-ins). */
  skipCloud: boolean
  /** Only the cloud-driver rows (no seeding of the main table, no other variant). */
  cloudOnly: boolean
  /** Latencies the stand-ins add to every answer, ms (one row each). */
  cloudLatencies: number[]
  /** Requests in flight of the cloud drivers in the latency rows. */
  cloudConcurrency: number
  /** Requests/s ceiling of the cloud drivers in the latency rows. */
  cloudRps: number
  /** Rows of a cloud row at most. */
  cloudRows: number
  /** Seconds a cloud row should last at its bound (sets its rows). */
  cloudSeconds: number
  /** Worker counts of the workers rows (`rotate:kek --workers N`); empty = no workers rows. */
  workers: number[]
  /** Only the workers rows (no main table, no other variant, no cloud rows). */
  workersOnly: boolean
  /** Latencies kms:serve adds to every answer in the workers rows, ms (one set each). */
  workersLatencies: number[]
  /** Rows of the workers' table. */
  workersRows: number
  /** Also the in-process `rotate:kek` (no --workers) at each latency, as a reference row. */
  workersReference: boolean
  /** REWRAP_CPU_NICE of the workers rows' rotate:kek and workers (the product's default is 19). */
  workersCpuNice: number
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
  --skip-cloud          skip the aws-kms / azure-keyvault rows
  --cloud-only          only the aws-kms / azure-keyvault rows
  --cloud-latency "5,20"  ms the stand-ins add to every answer (one row each)
  --cloud-concurrency N requests in flight of the cloud drivers (default 4)
  --cloud-rps N         their requests/s ceiling in those rows (default 10000,
                        AWS's account quota: the concurrency is the bound);
                        each driver also runs once with its own defaults
  --cloud-rows N        rows of a cloud row at most (default 10000)
  --cloud-seconds N     a cloud row's rows: about N seconds at its bound (default 10)
  --workers "1,2,4"     also time rotate:kek --workers N (one run shared by N
                        rewrap:worker children) against kms:serve (vault
                        driver), full speed, one table; see docs/benchmarks.md
  --workers-only        only the workers rows
  --workers-latency "0,5,20"  ms kms:serve adds to every answer (one set each)
  --workers-rows N      rows of the workers' table (default 320000: 16 chunks)
  --skip-workers-reference  without the in-process rotate:kek reference row
  --workers-cpu-nice N  REWRAP_CPU_NICE of those processes (default 0; the
                        product's default 19 yields the CPU to any other work)

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
      'skip-cloud': { type: 'boolean' },
      'cloud-only': { type: 'boolean' },
      'cloud-latency': { type: 'string' },
      'cloud-concurrency': { type: 'string' },
      'cloud-rps': { type: 'string' },
      'cloud-rows': { type: 'string' },
      'cloud-seconds': { type: 'string' },
      'workers': { type: 'string' },
      'workers-only': { type: 'boolean' },
      'workers-latency': { type: 'string' },
      'workers-rows': { type: 'string' },
      'skip-workers-reference': { type: 'boolean' },
      'workers-cpu-nice': { type: 'string' },
      ...HELP_OPTION,
    },
  })
  exitWithHelpIfAsked(values.help, HELP)
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
    cliArgs: wordsOption(values['cli-args']),
    outDir: values['out'] ?? 'bench-results',
    skipCloud: values['skip-cloud'] ?? false,
    cloudOnly: values['cloud-only'] ?? false,
    cloudLatencies: intListOption('cloud-latency', values['cloud-latency'] ?? '5,20', 1),
    cloudConcurrency: int('cloud-concurrency', values['cloud-concurrency'], 4, 1),
    cloudRps: int('cloud-rps', values['cloud-rps'], 10_000, 1),
    cloudRows: int('cloud-rows', values['cloud-rows'], 10_000, 1000),
    cloudSeconds: int('cloud-seconds', values['cloud-seconds'], 10, 1),
    ...workerOptions(values),
  }
}

/** The `--workers*` options (`--workers-only` alone means 1,2,4). */
function workerOptions(values: Record<string, string | boolean | undefined>) {
  const list = (name: string, value: string, min: number) =>
    intListOption(name, value, min, { skipEmpty: true })
  const workersOnly = values['workers-only'] === true
  const given = values['workers'] as string | undefined
  return {
    workers: list('workers', given ?? (workersOnly ? '1,2,4' : ''), 1),
    workersOnly,
    workersLatencies: list('workers-latency', (values['workers-latency'] as string) ?? '0,5,20', 0),
    workersRows: int('workers-rows', values['workers-rows'] as string | undefined, 320_000, 1000),
    workersReference: values['skip-workers-reference'] !== true,
    workersCpuNice: Math.min(
      19,
      int('workers-cpu-nice', values['workers-cpu-nice'] as string | undefined, 0, 0)
    ),
  }
}
