import { readFile } from 'node:fs/promises'
import app from '@adonisjs/core/services/app'
import type { HttpContext } from '@adonisjs/core/http'
import { E_CONSOLE_ASSET_NOT_FOUND } from '#app/errors'

/** The console's own files (no CDN: the page works offline). */
const ASSETS: Record<string, string> = {
  'console.css': 'text/css; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
}

/**
 * GET /console/assets/:file → the stylesheet or the script from
 * resources/console (read once per process).
 */
export default class ConsoleAssetsController {
  static #cache = new Map<string, Buffer>()

  /**
   * Serves one of {@link ASSETS}; anything else is 404.
   */
  async show({ params, response }: HttpContext) {
    const file = String(params.file)
    const type = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined
    if (!type) throw new E_CONSOLE_ASSET_NOT_FOUND([file])
    let body = ConsoleAssetsController.#cache.get(file)
    if (!body) {
      body = await readFile(app.makePath('resources/console', file))
      ConsoleAssetsController.#cache.set(file, body)
    }
    response.header('Content-Type', type)
    return response.send(body)
  }
}
