import { test } from '@japa/runner'
import { LAST_USED_RESOLUTION_MS, lastUseIsStale } from '#services/token_service'

test.group('token last use resolution', () => {
  const now = new Date('2026-12-01T10:00:00Z')
  const ago = (ms: number) => new Date(now.getTime() - ms)

  test('never used → stamp it', ({ assert }) => {
    assert.isTrue(lastUseIsStale(null, now))
    assert.isTrue(lastUseIsStale(undefined, now))
  })

  test('stamped within the resolution → no write; at or past it → write', ({ assert }) => {
    assert.isFalse(lastUseIsStale(ago(0), now))
    assert.isFalse(lastUseIsStale(ago(LAST_USED_RESOLUTION_MS - 1), now))
    assert.isTrue(lastUseIsStale(ago(LAST_USED_RESOLUTION_MS), now))
    assert.isTrue(lastUseIsStale(ago(10 * LAST_USED_RESOLUTION_MS), now))
  })

  test('a stamp in the future (clock stepped back) is rewritten, not trusted', ({ assert }) => {
    assert.isTrue(lastUseIsStale(ago(-5_000), now))
  })
})
