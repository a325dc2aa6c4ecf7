import { test } from '@japa/runner'
import type { AuditChainVerdict } from '#app/governance/audit_chain'
import { AuditChainMonitor } from '#services/audit_chain_monitor'

const INTACT: AuditChainVerdict = { ok: true, count: 3, head: 'Ehead', serviceAid: 'Eaid' }
const BROKEN: AuditChainVerdict = {
  ok: false,
  code: 'E_AUDIT_CHAIN_BROKEN',
  index: 1,
  said: 'Ebad',
  cause: 'E_SIGNATURE_INVALID',
  reason: 'signature does not verify',
}

test.group('AuditChainMonitor', () => {
  test('a scrape never waits: nothing before the first check, then its result', async ({
    assert,
  }) => {
    let release!: (verdict: AuditChainVerdict) => void
    const monitor = new AuditChainMonitor(
      () => new Promise((resolve) => (release = resolve)),
      () => 5000
    )
    assert.isNull(monitor.latest(), 'no result while the first check runs')
    release(INTACT)
    await monitor.refresh()
    assert.deepEqual(monitor.latest(), { ok: true, checkedAt: 5000 })
  })

  test('checks again only after the interval; a broken chain reads ok: false', async ({
    assert,
  }) => {
    let now = 0
    const verdicts = [INTACT, BROKEN]
    let runs = 0
    const monitor = new AuditChainMonitor(
      async () => verdicts[runs++],
      () => now,
      60_000
    )
    await monitor.refresh()
    now = 59_999
    monitor.latest()
    await monitor.refresh()
    assert.equal(runs, 1, 'within the interval: no new check')
    now = 60_000
    await monitor.refresh()
    assert.equal(runs, 2)
    assert.deepEqual(monitor.latest(), { ok: false, checkedAt: 60_000 })
  })

  test('a check that cannot run keeps the previous result', async ({ assert }) => {
    let now = 0
    let fail = false
    const monitor = new AuditChainMonitor(
      async () => {
        if (fail) throw new Error('database down')
        return INTACT
      },
      () => now,
      1000
    )
    await monitor.refresh()
    fail = true
    now = 5000
    await assert.rejects(() => monitor.refresh(), 'database down')
    assert.deepEqual(monitor.latest(), { ok: true, checkedAt: 0 })
  })
})
