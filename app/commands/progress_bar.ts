import cliProgress from 'cli-progress'
import { terminal, type TerminalOverlay } from '#app/utils/terminal_log'

/**
 * A one-line progress bar at the bottom of the terminal (stderr) that other
 * lines — log records, the command's own messages — are written above
 * (through `terminal`), never into. Drawn from the first `update` until
 * `stop`, which leaves the final state on its own line.
 */
export class ProgressBar implements TerminalOverlay {
  #multi: cliProgress.MultiBar
  #bar: cliProgress.SingleBar | null = null
  #stopped = false

  /** `format`: cli-progress tokens ({bar}, {percentage}, {value}, {total}, payload keys). */
  constructor(format: string) {
    this.#multi = new cliProgress.MultiBar(
      {
        format,
        stream: process.stderr,
        // Redraw after a line was written above; cut the bar (not the lines above) to the width.
        forceRedraw: true,
        linewrap: true,
      },
      cliProgress.Presets.shades_classic
    )
  }

  /** Shows `done` of `total` (and the payload's tokens); the first call draws the bar. */
  update(done: number, total: number, payload: Record<string, unknown> = {}) {
    if (this.#stopped) return
    if (!this.#bar) {
      this.#bar = this.#multi.create(total, done, payload)
      terminal.attach(this)
      return
    }
    this.#bar.setTotal(total)
    this.#bar.update(done, payload)
  }

  /** Writes `line` above the bar, then draws the bar again (at once: lines keep their order). */
  writeAbove(line: string) {
    this.#multi.log(`${line}\n`)
    this.#multi.update()
  }

  /** Draws the final state and moves below it (no-op when never drawn or already stopped). */
  stop() {
    if (this.#stopped) return
    this.#stopped = true
    terminal.detach(this)
    if (this.#bar) this.#multi.stop()
  }
}
