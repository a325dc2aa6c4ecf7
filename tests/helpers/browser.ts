/*
|--------------------------------------------------------------------------
| A real browser for the console tests (Debian's chromium via Playwright)
|--------------------------------------------------------------------------
|
| No browser download: Playwright drives the system's chromium
| (CHROMIUM_PATH, else /usr/bin/chromium). Where there is none (.ci/run
| installs it as root; a normal user cannot), the browser suite's tests
| are skipped with that reason instead of failing.
|
*/
import { accessSync, constants, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser } from 'playwright'

/** Where screenshots of the console's states go. */
export const SCREENSHOT_DIR = fileURLToPath(
  new URL('../../tmp/console-screenshots/', import.meta.url)
)

/** The chromium binary, or null when there is none to run. */
export function chromiumPath(): string | null {
  const path = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
  try {
    accessSync(path, constants.X_OK)
    return path
  } catch {
    return null
  }
}

/** Why the browser tests cannot run here, or null when they can. */
export function browserSkipReason(): string | null {
  return chromiumPath()
    ? null
    : `no chromium at ${process.env.CHROMIUM_PATH || '/usr/bin/chromium'} (install it: apt-get install -y chromium, as root; or set CHROMIUM_PATH)`
}

/**
 * Launches chromium headless, quiet and offline-friendly: no sandbox as
 * root (chromium refuses otherwise), no background network, updates,
 * sync or first-run work.
 */
export function launchChromium(options: { headless?: boolean } = {}): Promise<Browser> {
  const args = [
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-default-apps',
    '--disable-sync',
    '--disable-dev-shm-usage',
    '--no-first-run',
    '--no-default-browser-check',
    '--metrics-recording-only',
    '--mute-audio',
  ]
  if (process.getuid?.() === 0) args.push('--no-sandbox')
  return chromium.launch({
    executablePath: chromiumPath() ?? undefined,
    headless: options.headless ?? true,
    args,
  })
}

/** The screenshot file of one console state (the folder is created). */
export function screenshotPath(name: string): string {
  mkdirSync(SCREENSHOT_DIR, { recursive: true })
  return `${SCREENSHOT_DIR}${name}.png`
}
