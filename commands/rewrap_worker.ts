import { flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { Locator, QueueManager, Worker } from '@adonisjs/queue'
import type { RewrapConfig } from '#config/rewrap'
import { RewrapCommand } from '#app/commands/rewrap_command'
import RewrapChunkJob from '#app/jobs/rewrap_chunk_job'
import { enterBackgroundPriority } from '#services/cpu_priority'
import { CHUNK_JOB, CHUNK_QUEUE, workerContext } from '#services/distributed_runs'
import { rewrapWorkerValidator } from '#validators/rotation'

/**
 * `node ace rewrap:worker`: takes chunks of distributed runs until stopped.
 */
export default class RewrapWorker extends RewrapCommand {
  static commandName = 'rewrap:worker'
  static description =
    'Take chunks of distributed rotation and re-encrypt runs from the queue until stopped'
  static help = [
    'A distributed run (rotate:kek or reencrypt with --distributed or --workers N, POST /rotations',
    'with "distributed": true) is cut into chunks, each a job on the app\'s PostgreSQL. Start any',
    "number of workers on any number of machines pointed at the same database. A chunk's",
    'cursor and counters live in the database: a worker that dies loses nothing, another one',
    'takes the chunk over once its lease ends (REWRAP_WORKER_LEASE_MS, default 30 s).',
    'SIGTERM or Ctrl-C finishes the batch in flight, gives the chunk back and exits 0.',
    '',
    '{{ binaryName }} rewrap:worker',
    '{{ binaryName }} rewrap:worker --concurrency 2',
    '',
    'Use this command rather than queue:work: it registers the chunk job, gives chunks back on',
    'SIGTERM and sweeps the stalled jobs of dead workers on its own timer.',
  ]
  static options: CommandOptions = { startApp: true, staysAlive: true }

  /** Chunks worked at once. */
  @flags.number({ description: 'Chunks worked at once by this process (default 1)' })
  declare concurrency?: number

  /** Machine output. */
  @flags.boolean({ description: 'Print errors as JSON' })
  declare json?: boolean

  /**
   * Starts the worker; resolves once it has stopped.
   */
  async run() {
    const { concurrency } = await rewrapWorkerValidator.validate({
      concurrency: this.concurrency ?? 1,
    })
    if (!this.app.inTest) {
      enterBackgroundPriority(this.app.config.get<RewrapConfig>('rewrap').rotation)
    }
    const controller = new AbortController()
    workerContext.signal = controller.signal
    const config = this.app.config.get<any>('queue')
    const queueManager = await this.app.container.make('queue.manager')
    Locator.register(CHUNK_JOB, RewrapChunkJob)
    const logger = await this.app.container.make('logger')
    const worker = new Worker({
      ...config,
      autoLoadJobs: false,
      // As `queue:work` does: the config's adapter providers resolved against this app.
      adapters: Object.fromEntries(
        await Promise.all(
          Object.entries(config.adapters).map(async ([name, adapter]: [string, any]) => [
            name,
            typeof adapter === 'function' ? adapter : await adapter.resolver(this.app),
          ])
        )
      ),
      logger,
      worker: {
        ...config.worker,
        concurrency,
        onShutdownSignal: () => controller.abort('shutdown'),
      },
    })
    let stopping: Promise<void> | null = null
    const stop = () => {
      if (!controller.signal.aborted) controller.abort('shutdown')
      stopping ??= worker.stop()
      return stopping
    }
    // Set once the engine's loop has returned (no query of it in flight any more).
    let loopDone: Promise<unknown> = Promise.resolve()
    this.app.terminating(async () => {
      await stop()
      // SIGTERM terminates the app, which then closes the database pool: wait for the loop to
      // leave its last poll first, or that poll waits for a connection from a closed pool
      // (knex's acquire timeout, a minute) before the process can exit.
      await loopDone
    })
    // The engine checks for stalled jobs only from a free slot; a fleet whose every slot is
    // busy would leave a dead worker's job active. This process sweeps on its own timer too, so
    // such a job is back on the queue within stalledThreshold + stalledInterval whatever the
    // fleet is doing.
    const stalledMs = Number(config.worker.stalledThreshold)
    const sweep = setInterval(() => {
      if (controller.signal.aborted) return
      Promise.resolve()
        .then(() =>
          QueueManager.use().recoverStalledJobs(
            CHUNK_QUEUE,
            stalledMs,
            Number(config.worker.maxStalledCount)
          )
        )
        .catch(() => {})
    }, Number(config.worker.stalledInterval))
    sweep.unref()
    this.logger.info(`rewrap:worker ${workerContext.id} taking chunks (concurrency ${concurrency})`)
    try {
      const loop = worker.start([CHUNK_QUEUE])
      loopDone = loop.catch(() => {})
      await loop
    } finally {
      clearInterval(sweep)
      await queueManager.destroy().catch(() => {})
    }
    this.logger.info(`rewrap:worker ${workerContext.id} stopped`)
  }
}
