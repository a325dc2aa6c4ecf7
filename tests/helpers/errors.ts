/*
|--------------------------------------------------------------------------
| Asserting errors by their stable code
|--------------------------------------------------------------------------
*/

/**
 * Awaits a rejection and checks its stable code (an `E_*` of the app, or a
 * Postgres SQLSTATE): any other failure (ECONNREFUSED, a timeout…) or a
 * success fails with what happened instead. Answers the error.
 */
export async function rejectsWith(promise: Promise<unknown>, code: string): Promise<Error> {
  try {
    await promise
  } catch (error) {
    if ((error as any)?.code !== code) {
      throw new Error(
        `expected ${code}, got ${(error as any)?.code ?? 'no code'}: ${(error as Error).message}`
      )
    }
    return error as Error
  }
  throw new Error(`expected ${code}, but the call succeeded`)
}
