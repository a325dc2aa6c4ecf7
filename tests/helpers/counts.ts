/*
| The status report's row counts are cached per process (EntryCountCache):
| a test that just wrote rows forgets them before it reads a report.
*/
import app from '@adonisjs/core/services/app'
import { EntryCountCache } from '#services/entry_counts'

/** Forgets the cached row counts: the next report counts afresh. */
export async function clearCounts() {
  const cache = await app.container.make(EntryCountCache)
  cache.clear()
}
