import { spawn, type ChildProcess } from 'node:child_process'

/**
 * `rotate:kek --workers N`: N `rewrap:worker` child processes of this
 * command (same app, same environment), stopped with SIGTERM when the run
 * ends (each finishes its batch and gives its chunk back).
 */
export class LocalWorkers {
  #children: ChildProcess[] = []

  constructor(
    private aceFile: string,
    private count: number
  ) {}

  /** Starts the workers. */
  start(): void {
    for (let i = 0; i < this.count; i++) {
      const child = spawn(process.execPath, [this.aceFile, 'rewrap:worker'], {
        env: process.env,
        stdio: ['ignore', 'ignore', 'inherit'],
      })
      this.#children.push(child)
    }
  }

  /** Stops them (SIGTERM) and waits until every one has exited. */
  async stop(): Promise<void> {
    await Promise.all(
      this.#children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve()
            child.once('exit', () => resolve())
            child.kill('SIGTERM')
          })
      )
    )
  }
}
