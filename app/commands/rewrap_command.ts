import { BaseCommand } from '@adonisjs/core/ace'
import cliProgress from 'cli-progress'
import type { RewrapConfig } from '#config/rewrap'
import { errorLine } from '#exceptions/handler'
import { enterBackgroundPriority } from '#services/cpu_priority'
import type { RunProgress } from '#services/run_progress'

/** What a long-running command's work receives. */
export interface BackgroundHooks<Run> {
  /** Aborted by the first SIGINT/SIGTERM: finish the current batch, stay resumable. */
  signal: AbortSignal
  /** Feed every batch's progress here. */
  onProgress: (progress: RunProgress<Run>) => void
}

/**
 * Base of the app's Ace commands: a failure or refusal ends the command
 * with exit code 1 and one line naming the error code (a JSON object
 * `{ "error": … }` when the command runs with `--json`), never a stack
 * trace and never a secret.
 */
export abstract class RewrapCommand extends BaseCommand {
  /** Commands with a `--json` flag declare it; errors then print as JSON. */
  declare json?: boolean

  /**
   * Runs long background work (rewrap, re-encrypt): lowers this process's
   * CPU priority and that of its local Postgres backends (config/rewrap.ts
   * `rotation.cpuNice`, `niceLocalBackends`; not under tests),
   * turns the first SIGINT/SIGTERM into an abort (a second one exits 130),
   * and reports progress — a bar named `label` on a TTY, else one JSON line
   * `{ event: "<label>.progress", …describe(run) }` every 2 s (none with
   * `--json`).
   */
  protected async background<Run, T>(
    label: string,
    describe: (run: Run) => Record<string, unknown>,
    work: (hooks: BackgroundHooks<Run>) => Promise<T>
  ): Promise<T> {
    if (!this.app.inTest) {
      enterBackgroundPriority(this.app.config.get<RewrapConfig>('rewrap').rotation)
    }
    const controller = new AbortController()
    const stop = () => {
      if (controller.signal.aborted) process.exit(130)
      controller.abort()
      if (!this.json) this.logger.warning('Stopping after the current batch… (again to force)')
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
    const bar =
      process.stdout.isTTY && !this.json && !this.app.inTest
        ? new cliProgress.SingleBar(
            {
              format: `${label} [{bar}] {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {eta_formatted}`,
            },
            cliProgress.Presets.shades_classic
          )
        : null
    let lastLog = 0
    const onProgress = (p: RunProgress<Run>) => {
      if (bar) {
        if (!bar.isActive) bar.start(p.total, p.done, { rate: p.rowsPerSecond })
        bar.setTotal(p.total)
        bar.update(p.done, { rate: p.rowsPerSecond })
      } else if (!this.json && Date.now() - lastLog >= 2000) {
        lastLog = Date.now()
        this.logger.log(
          JSON.stringify({
            event: `${label}.progress`,
            ...describe(p.run),
            done: p.done,
            total: p.total,
            rowsPerSecond: p.rowsPerSecond,
            etaSeconds: p.etaSeconds,
          })
        )
      }
    }
    try {
      return await work({ signal: controller.signal, onProgress })
    } finally {
      bar?.stop()
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
    }
  }

  /**
   * Ace hook after `run()`: reports `this.error` as one line, exit code 1.
   */
  async completed() {
    if (!this.error) return false
    this.exitCode = 1
    if (this.json) this.logger.log(JSON.stringify({ error: errorLine(this.error) }))
    else this.logger.error(errorLine(this.error))
    return true
  }
}
