/*
|--------------------------------------------------------------------------
| Ace's own errors as one `E_CODE: message` line
|--------------------------------------------------------------------------
|
| A failing command prints one `E_CODE: message` line (RewrapCommand); the
| errors Ace raises before a command runs — an unknown flag, a flag value
| of the wrong type, a missing argument — printed `ERROR  Invalid value…`
| without a code. Installed on the kernel by bin/console.ts.
|
*/
import { errors, type Kernel } from '@adonisjs/core/ace'

const ACE_CODES = new Set(Object.keys(errors))

/**
 * Makes `kernel` print Ace's parse errors as `E_CODE: message` (exit code 1
 * as before); every other error is rendered as Ace does.
 */
export function useErrorCodeLines(kernel: Kernel) {
  const handler = kernel.errorHandler
  const render = handler.render.bind(handler)
  handler.render = async (error: unknown, target: Kernel) => {
    const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown }
    if (typeof code === 'string' && ACE_CODES.has(code) && typeof message === 'string') {
      target.ui.logger.logError(`${code}: ${message}`)
      return
    }
    return render(error, target)
  }
}
