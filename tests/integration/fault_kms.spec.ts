/*
|--------------------------------------------------------------------------
| KMS faults during a run (node-vault → the transit server over HTTP)
|--------------------------------------------------------------------------
|
| A seeded policy makes the transit server fail one call in five: 429 with
| and without Retry-After, 500, 503, no answer (the client's timeout),
| a response cut mid-body, a reset connection, per-item batch errors. A
| writer updates entries through the entry service all along. Runs are
| resumed or re-run until every row is at the target; the checker: every
| plaintext unchanged, every acknowledged write kept, the KEK rotated once.
|
*/
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import { KmsManager } from '#kms/kms_manager'
import type { InjectedFault } from '#kms/transit_server/types'
import { Clock } from '#services/clock'
import { EntryService } from '#services/entry_service'
import { KeyRotationService } from '#services/key_rotation_service'
import type { RotationRun } from '#services/rotation_store'
import {
  digestDiff,
  plaintextDigests,
  reliabilitySeed,
  seededRandom,
  withSeed,
} from '#tests/helpers/crash_checker'
import { kekName, latestVersion, seed, versionCounts } from '#tests/helpers/rotation'
import { startTransitServer, vaultDriverFor, type TransitFixture } from '#tests/helpers/transit'

/** Instant sleeps that move a virtual clock (the loop's outage backoff). */
class VirtualClock extends Clock {
  #offset = 0
  now() {
    return new Date(Date.now() + this.#offset)
  }
  async sleep(ms: number) {
    this.#offset += ms
  }
}

const FAULTS: InjectedFault[] = [
  { status: 429, retryAfter: 1 },
  { status: 429 },
  { status: 500 },
  { status: 503 },
  { kind: 'hang' },
  { kind: 'truncate' },
  { kind: 'reset' },
  { kind: 'item_errors' },
]

test.group('reliability: KMS faults during a run', (group) => {
  let fixture: TransitFixture

  group.setup(async () => {
    fixture = await startTransitServer()
    return () => fixture.close()
  })
  group.each.teardown(() => {
    fixture.server.clearFaults()
    app.container.restoreAll()
  })

  function useVault() {
    const { driver, retryDeps } = vaultDriverFor(fixture, { batchSize: 50, timeoutMs: 300 })
    app.container.swap(
      KmsManager,
      () => new KmsManager({ default: 'vault', drivers: { vault: () => driver } })
    )
    app.container.swap(Clock, () => new VirtualClock())
    return { driver, retryDeps }
  }

  test('one call in five fails (429 ± Retry-After, 500, 503, timeouts, truncated, reset, per-item errors): runs resumed until done, nothing lost, rotated once', async ({
    assert,
  }) => {
    const runSeed = reliabilitySeed() + 2
    await withSeed(runSeed, async () => {
      const random = seededRandom(runSeed)
      const { driver, retryDeps } = useVault()
      const kek = kekName('kmsfault')
      await driver.createKey(kek)
      const expected = await seed(kek, 2000)
      const before = await plaintextDigests(kek)
      const ids = [...expected.keys()]
      const hit: Record<string, number> = {}
      fixture.server.setFaultPolicy((path) => {
        if (random() >= 0.2) return null
        const fault = FAULTS[Math.floor(random() * FAULTS.length)]
        const name = fault.kind ?? `${fault.status}${fault.retryAfter ? '+retry-after' : ''}`
        hit[name] = (hit[name] ?? 0) + 1
        return { ...fault, pathIncludes: path }
      })

      // A writer through the entry service, retrying a failed update until acknowledged.
      // At least one batch rewrap with per-item errors, whatever the dice say.
      fixture.server.injectFaults([{ kind: 'item_errors', pathIncludes: '/rewrap/' }])
      const entries = await app.container.make(EntryService)
      const acked = new Map<string, unknown>()
      let writing = true
      const writer = (async () => {
        for (let n = 0; writing; n++) {
          const id = ids[(n * 13) % 200]
          const data = { rewritten: n, id }
          for (;;) {
            try {
              await entries.update(id, data)
              break
            } catch {}
          }
          acked.set(id, data)
        }
      })()

      const rotations = await app.container.make(KeyRotationService)
      const outcomes: string[] = []
      let run: RotationRun | null = null
      try {
        for (let attempt = 0; attempt < 30; attempt++) {
          const resume = run?.status === 'failed'
          try {
            run = await rotations.rotate(kek, {
              batchSize: 100,
              niceRatio: 0,
              ...(resume ? { resume: true } : run ? { rotate: false } : {}),
            })
          } catch (error) {
            const [unfinished] = await rotations.list({ kek, limit: 1 })
            run = unfinished
            outcomes.push(`threw ${(error as any).code}`)
            continue
          }
          outcomes.push(run.status)
          if (run.status === 'completed') break
        }
      } finally {
        writing = false
        await writer
        fixture.server.setFaultPolicy(null)
      }
      const context = JSON.stringify({ outcomes, hit })
      assert.equal(run?.status, 'completed', context)
      assert.include(outcomes, 'completed_with_errors', `per-item errors recorded: ${context}`)
      assert.isAtLeast(Object.keys(hit).length, 6, `fault kinds hit: ${context}`)
      assert.isNotEmpty(retryDeps.sleeps, 'the driver backed off')
      assert.deepEqual(await versionCounts(kek), { 2: 2000 })
      assert.equal(await latestVersion(kek), 2, `rotated exactly once: ${context}`)
      // Rows no writer touched decrypt to what was seeded; written rows to the last ack.
      const after = await plaintextDigests(kek)
      for (const id of acked.keys()) {
        before.delete(id)
        after.delete(id)
      }
      assert.deepEqual(digestDiff(before, after), [], 'plaintexts unchanged')
      for (const [id, data] of acked) {
        const entry = await entries.find(id)
        assert.deepEqual(entry.data, data, `entry ${id}: acknowledged write kept`)
      }
    })
  }).timeout(300_000)

  test('a KMS outage longer than rotation.kmsOutageMs over HTTP: the run ends failed (E_KMS_UNAVAILABLE), --resume completes it', async ({
    assert,
  }) => {
    const { driver } = useVault()
    const kek = kekName('kmsdown')
    await driver.createKey(kek)
    await seed(kek, 500)
    const rotations = await app.container.make(KeyRotationService)
    let down = false
    fixture.server.setFaultPolicy((path) =>
      down && path.includes('/rewrap/') ? { status: 503 } : null
    )
    await assert.rejects(
      () =>
        rotations.rotate(kek, {
          batchSize: 100,
          niceRatio: 0,
          onProgress: () => {
            down = true
          },
        }),
      /KMS is unavailable/
    )
    const [failed] = await rotations.list({ kek })
    assert.equal(failed.status, 'failed')
    assert.include(failed.lastError!, 'E_KMS_UNAVAILABLE')
    const counts = await versionCounts(kek)
    assert.equal(failed.rewrapped, counts[2], 'the committed batches are counted')
    assert.isAbove(counts[1], 0)

    fixture.server.setFaultPolicy(null)
    const resumed = await rotations.rotate(kek, { resume: true })
    assert.equal(resumed.id, failed.id)
    assert.equal(resumed.status, 'completed')
    assert.equal(resumed.rewrapped, 500)
    assert.deepEqual(await versionCounts(kek), { 2: 500 })
    assert.equal(await latestVersion(kek), 2)
  }).timeout(120_000)
})
