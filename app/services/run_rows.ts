/*
|--------------------------------------------------------------------------
| Run rows: SQL helpers shared by the run stores
|--------------------------------------------------------------------------
*/
import db from '@adonisjs/lucid/services/db'
import type { QueryClientContract } from '@adonisjs/lucid/types/database'
import { BACKGROUND_TAG } from '#services/foreground_detector'

/** Statuses of a run that can be resumed. */
export const UNFINISHED_STATUSES = ['running', 'failed', 'cancelled'] as const

/**
 * Passes an array to Postgres as one array parameter (knex would otherwise
 * expand it into a list of placeholders).
 */
export function pgArray(values: unknown[]) {
  return { toPostgres: () => values } as unknown as string
}

/**
 * Sets `fields` (snake_case columns, from code, never from input) and
 * `updated_at` on one row of a run table; answers the row.
 */
export async function updateRunRow(
  table: 'key_rotations' | 'reencrypt_runs',
  id: string,
  fields: Record<string, unknown>,
  client: Pick<QueryClientContract, 'rawQuery'> = db
): Promise<Record<string, any>> {
  const { rows } = await client.rawQuery(
    `${BACKGROUND_TAG} UPDATE ${table} SET ${Object.keys(fields)
      .map((key) => `${key} = ?`)
      .join(', ')}, updated_at = now() WHERE id = ? RETURNING *`,
    [...Object.values(fields).map((v) => (v === undefined ? null : v)), id] as any[]
  )
  return rows[0]
}
