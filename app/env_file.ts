/*
|--------------------------------------------------------------------------
| .env permissions
|--------------------------------------------------------------------------
|
| .env holds APP_KEY, KMS_ROOT_KEY and the database password: a file others
| on the host can read gives them the keys. `npm start` writes it 0600; the
| server warns once at boot when it finds it group- or world-readable.
|
*/
import { statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ApplicationService } from '@adonisjs/core/types'

/** The dotenv files AdonisJS reads for the app at `appRoot` (honours ENV_PATH). */
export function envFilePaths(appRoot: string | URL): string[] {
  const root = typeof appRoot === 'string' ? appRoot : fileURLToPath(appRoot)
  const base = resolve(root, process.env.ENV_PATH || '')
  return [join(base, '.env'), join(base, '.env.local')]
}

/** The files among `paths` that group or others may read, with their mode (e.g. "644"). */
export function exposedEnvFiles(paths: string[]): Array<{ path: string; mode: string }> {
  const exposed: Array<{ path: string; mode: string }> = []
  for (const path of paths) {
    try {
      const mode = statSync(path).mode & 0o777
      if (mode & 0o044) exposed.push({ path, mode: mode.toString(8) })
    } catch {
      // absent: nothing to expose
    }
  }
  return exposed
}

/**
 * Logs one warning per exposed dotenv file through the app's logger.
 */
export async function warnIfEnvFileExposed(app: ApplicationService) {
  const exposed = exposedEnvFiles(envFilePaths(app.appRoot))
  if (exposed.length === 0) return
  const logger = await app.container.make('logger')
  for (const { path, mode } of exposed) {
    logger.warn(
      { path, mode },
      `${path} is readable by other users (mode ${mode}) and holds secrets: chmod 600 it`
    )
  }
}
