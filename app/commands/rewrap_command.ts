import { BaseCommand } from '@adonisjs/core/ace'
import type { RewrapConfig } from '#config/rewrap'
import { errorLine } from '#exceptions/handler'
import { enterBackgroundPriority } from '#services/cpu_priority'
import type { CancelledBy } from '#services/rotation_store'
import type { RunProgress } from '#services/run_progress'
import { terminal } from '#app/utils/terminal_log'
import { ProgressBar } from '#app/commands/progress_bar'

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
   * Runs `work` as a progress session. On a terminal (stderr is a TTY, an Ace
   * process, no `--json`) `work` gets a bar drawn with `format`; until `work`
   * ends, log records and this command's messages are written above the bar
   * and the terminal shows warnings and errors only (every record is in the
   * log file, see config/logger.ts). Elsewhere `work` gets null and nothing
   * changes. The command prints its summary after this returns.
   */
  protected async withProgress<T>(
    format: string,
    work: (bar: ProgressBar | null) => Promise<T>
  ): Promise<T> {
    const draws = !!process.stderr.isTTY && !this.json && this.app.getEnvironment() === 'console'
    if (!draws) return work(null)
    const endSession = terminal.beginProgress()
    const bar = new ProgressBar(format)
    const logger = this.ui.logger
    const renderer = logger.getRenderer()
    // The command's own lines (e.g. "Stopping after the current batch…") go above the bar too.
    logger.useRenderer({
      getLogs: () => renderer.getLogs(),
      flushLogs: () => renderer.flushLogs(),
      logUpdate: (message: string) => renderer.logUpdate(message),
      logUpdatePersist: () => renderer.logUpdatePersist(),
      log: (message: string) =>
        terminal.hasOverlay ? terminal.writeLine(message) : renderer.log(message),
      logError: (message: string) =>
        terminal.hasOverlay ? terminal.writeLine(message) : renderer.logError(message),
    })
    try {
      return await work(bar)
    } finally {
      bar.stop()
      logger.useRenderer(renderer)
      endSession()
    }
  }

  /**
   * Runs long background work (rewrap, re-encrypt): lowers this process's
   * CPU priority and that of its local Postgres backends (config/rewrap.ts
   * `rotation.cpuNice`, `niceLocalBackends`; not under tests),
   * turns the first SIGINT/SIGTERM (or an app termination) into an abort
   * (reason `operator` for Ctrl-C, else `shutdown`) and holds the app's
   * termination until the work has stored its stopped run (a second signal
   * exits 130 at once), and reports progress — a bar named `label` on a
   * terminal (`withProgress`), else one JSON line
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
    // Ctrl-C is a person stopping the run (it stays paused: the scheduler leaves it alone);
    // SIGTERM is a shutdown (the scheduler resumes it).
    let signals = 0
    const stop = (reason: CancelledBy) => {
      if (++signals > 1) process.exit(130)
      if (!controller.signal.aborted) controller.abort(reason)
      if (!this.json) this.logger.warning('Stopping after the current batch… (again to force)')
    }
    const onSigint = () => stop('operator')
    const onSigterm = () => stop('shutdown')
    process.on('SIGINT', onSigint)
    process.on('SIGTERM', onSigterm)
    const format = `${label} [{bar}] {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {eta_formatted}`
    try {
      return await this.withProgress(format, (bar) => {
        let lastLog = 0
        const onProgress = (p: RunProgress<Run>) => {
          if (bar) {
            bar.update(p.done, p.total, { rate: p.rowsPerSecond })
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
        const running = work({ signal: controller.signal, onProgress })
        // On SIGTERM bin/console.ts terminates the app, which closes the database once the
        // terminating hooks are done: the work first stores its stopped run.
        this.app.terminating(async () => {
          if (!controller.signal.aborted) controller.abort('shutdown')
          await running.catch(() => null)
        })
        return running
      })
    } finally {
      process.off('SIGINT', onSigint)
      process.off('SIGTERM', onSigterm)
    }
  }

  /**
   * Ends a command that checks one named KEK or every managed KEK
   * (rotation:preflight, rotation:verify): exit code 1 unless there is a
   * report and every one is ok; with `--json` one object (the named KEK's
   * report, else `{ ok, reports }`); else `E_NO_MANAGED_KEKS` when there
   * was no KEK to check, or `each` for every report, then `after`.
   */
  protected printKekReports<Report extends { ok: boolean }>(
    reports: Report[],
    output: { named: boolean; each: (report: Report) => void; after?: (ok: boolean) => void }
  ): void {
    const ok = reports.length > 0 && reports.every((r) => r.ok)
    if (!ok) this.exitCode = 1
    if (this.json) {
      this.logger.log(JSON.stringify(output.named ? reports[0] : { ok, reports }))
      return
    }
    if (reports.length === 0) {
      this.logger.error('E_NO_MANAGED_KEKS: name a KEK')
      return
    }
    for (const report of reports) output.each(report)
    output.after?.(ok)
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
