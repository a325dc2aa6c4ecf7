/*
|--------------------------------------------------------------------------
| Durations for people
|--------------------------------------------------------------------------
|
| Pure: the two largest units of a duration, for messages such as a
| refused retire ("the soak period is 1d 0h") or a rotation estimate.
|
*/

/** "3d 4h", "5h 2m", "12m", "40s". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`
}
