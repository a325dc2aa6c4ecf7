import { test } from '@japa/runner'
import { passDecision, shareOfRate } from '#services/run_budget'
import { rangesFrom } from '#services/chunk_store'

test.group('run budget', () => {
  test('the rows/s ceiling is shared by the chunks held (no ceiling stays none)', ({ assert }) => {
    assert.equal(shareOfRate(0, 3), 0)
    assert.equal(shareOfRate(9000, 3), 3000)
    assert.equal(shareOfRate(9000, 0), 9000)
    assert.equal(shareOfRate(2, 5), 1)
  })

  test('the remaining-rows decision after a pass', ({ assert }) => {
    assert.equal(passDecision(0, 0, 1, 3), 'completed')
    assert.equal(passDecision(5, 5, 1, 3), 'completed_with_errors')
    assert.equal(passDecision(5, 0, 3, 3), 'completed_with_errors')
    assert.equal(passDecision(5, 2, 1, 3), 'next_pass')
  })

  test('chunk ranges cover (0, ∞) without gaps or overlaps', ({ assert }) => {
    assert.deepEqual(rangesFrom(2, []), [{ staleVersion: 2, fromId: '0', untilId: null }])
    assert.deepEqual(rangesFrom(1, ['100', '250']), [
      { staleVersion: 1, fromId: '0', untilId: '100' },
      { staleVersion: 1, fromId: '100', untilId: '250' },
      { staleVersion: 1, fromId: '250', untilId: null },
    ])
  })
})
