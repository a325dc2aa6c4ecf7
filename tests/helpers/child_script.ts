import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/**
 * Runs an ES module `script` (TypeScript imports and `#alias` imports work)
 * in a child Node process at the project root, with the test run's
 * environment; answers the JSON its last stdout line prints. For state a
 * test must not leave in the runner, such as the process's CPU priority.
 */
export async function runScript<T = any>(script: string): Promise<T> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import=@poppinss/ts-exec', '--input-type=module', '-e', script],
    { cwd: ROOT }
  )
  return JSON.parse(stdout.trim().split('\n').pop()!)
}
