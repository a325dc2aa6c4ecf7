import { test } from '@japa/runner'
import { DekCache } from '#services/dek_cache'

/** A DEK whose bytes are all `fill`. */
function dek(fill: number) {
  return Buffer.alloc(32, fill)
}

/** A clock tests move by hand. */
function manualClock(start = 1_000_000) {
  let now = start
  return {
    now: () => now,
    advance(ms: number) {
      now += ms
    },
  }
}

test.group('DekCache / LRU', () => {
  test('holds at most maxEntries, evicting the least recently used', ({ assert }) => {
    const cache = new DekCache(3, 60_000)
    cache.set('1', 'vault:v1:a', dek(1))
    cache.set('2', 'vault:v1:b', dek(2))
    cache.set('3', 'vault:v1:c', dek(3))
    // Touch 1: now 2 is the least recently used.
    assert.deepEqual(cache.get('1', 'vault:v1:a'), dek(1))
    cache.set('4', 'vault:v1:d', dek(4))

    assert.equal(cache.stats().size, 3)
    assert.isUndefined(cache.get('2', 'vault:v1:b'))
    assert.deepEqual(cache.get('1', 'vault:v1:a'), dek(1))
    assert.deepEqual(cache.get('3', 'vault:v1:c'), dek(3))
    assert.deepEqual(cache.get('4', 'vault:v1:d'), dek(4))
  })

  test('the bound holds under many inserts', ({ assert }) => {
    const cache = new DekCache(50, 60_000)
    for (let i = 0; i < 1000; i++) cache.set(String(i), `vault:v1:${i}`, dek(i % 255))
    assert.equal(cache.stats().size, 50)
    assert.isUndefined(cache.get('949', 'vault:v1:949'))
    assert.deepEqual(cache.get('950', 'vault:v1:950'), dek(950 % 255))
    assert.deepEqual(cache.get('999', 'vault:v1:999'), dek(999 % 255))
  })

  test('setting the same key again replaces it without growing', ({ assert }) => {
    const cache = new DekCache(2, 60_000)
    cache.set('1', 'w', dek(1))
    cache.set('1', 'w', dek(9))
    assert.equal(cache.stats().size, 1)
    assert.deepEqual(cache.get('1', 'w'), dek(9))
  })

  test('maxEntries 0 disables the cache', ({ assert }) => {
    const cache = new DekCache(0, 60_000)
    cache.set('1', 'w', dek(1))
    assert.equal(cache.stats().size, 0)
    assert.isUndefined(cache.get('1', 'w'))
  })
})

test.group('DekCache / TTL', () => {
  test('serves a DEK until its TTL, not at or after it', ({ assert }) => {
    const clock = manualClock()
    const cache = new DekCache(10, 1000, clock.now)
    cache.set('1', 'w', dek(1))
    clock.advance(999)
    assert.deepEqual(cache.get('1', 'w'), dek(1))
    clock.advance(1)
    assert.isUndefined(cache.get('1', 'w'))
    // The expired entry is dropped, not kept around.
    assert.equal(cache.stats().size, 0)
  })

  test('a hit does not extend the TTL', ({ assert }) => {
    const clock = manualClock()
    const cache = new DekCache(10, 1000, clock.now)
    cache.set('1', 'w', dek(1))
    clock.advance(600)
    assert.isDefined(cache.get('1', 'w'))
    clock.advance(600)
    assert.isUndefined(cache.get('1', 'w'))
  })

  test('setting again restarts the TTL', ({ assert }) => {
    const clock = manualClock()
    const cache = new DekCache(10, 1000, clock.now)
    cache.set('1', 'w', dek(1))
    clock.advance(900)
    cache.set('1', 'w', dek(1))
    clock.advance(900)
    assert.isDefined(cache.get('1', 'w'))
  })
})

test.group('DekCache / keys', () => {
  test('a rewrapped row (new wrapped value) misses', ({ assert }) => {
    const cache = new DekCache(10, 60_000)
    cache.set('7', 'vault:v1:old', dek(1))
    assert.isUndefined(cache.get('7', 'vault:v2:new'))
    assert.deepEqual(cache.get('7', 'vault:v1:old'), dek(1))
  })

  test('the same wrapped value under another row id misses (a moved wrap)', ({ assert }) => {
    const cache = new DekCache(10, 60_000)
    cache.set('7', 'vault:v1:x', dek(1))
    assert.isUndefined(cache.get('8', 'vault:v1:x'))
  })

  test('forgetRow drops every wrap of that row and nothing else', ({ assert }) => {
    const cache = new DekCache(10, 60_000)
    cache.set('1', 'vault:v1:a', dek(1))
    cache.set('1', 'vault:v2:b', dek(2))
    cache.set('11', 'vault:v1:c', dek(3))
    cache.set('2', 'vault:v1:d', dek(4))
    cache.forgetRow('1')
    assert.isUndefined(cache.get('1', 'vault:v1:a'))
    assert.isUndefined(cache.get('1', 'vault:v2:b'))
    assert.deepEqual(cache.get('11', 'vault:v1:c'), dek(3))
    assert.deepEqual(cache.get('2', 'vault:v1:d'), dek(4))
    assert.equal(cache.stats().size, 2)
    cache.forgetRow('404')
    assert.equal(cache.stats().size, 2)
  })

  test('forgetRow after LRU eviction keeps the bookkeeping consistent', ({ assert }) => {
    const cache = new DekCache(1, 60_000)
    cache.set('1', 'a', dek(1))
    cache.set('2', 'b', dek(2))
    cache.forgetRow('1')
    cache.forgetRow('2')
    assert.equal(cache.stats().size, 0)
    cache.set('1', 'a', dek(1))
    assert.deepEqual(cache.get('1', 'a'), dek(1))
  })
})

test.group('DekCache / ownership', () => {
  test('set copies: wiping the caller’s buffer leaves the cached DEK intact', ({ assert }) => {
    const cache = new DekCache(10, 60_000)
    const mine = dek(5)
    cache.set('1', 'w', mine)
    mine.fill(0)
    assert.deepEqual(cache.get('1', 'w'), dek(5))
  })

  test('get returns a copy: wiping it leaves the cached DEK intact', ({ assert }) => {
    const cache = new DekCache(10, 60_000)
    cache.set('1', 'w', dek(5))
    cache.get('1', 'w')!.fill(0)
    assert.deepEqual(cache.get('1', 'w'), dek(5))
  })

  test('a DEK handed out survives its eviction (no wipe under the reader)', ({ assert }) => {
    const cache = new DekCache(1, 60_000)
    cache.set('1', 'w', dek(5))
    const held = cache.get('1', 'w')!
    cache.set('2', 'x', dek(6)) // evicts row 1
    assert.deepEqual(held, dek(5))
  })

  test('stats count hits and misses; clear empties', ({ assert }) => {
    const cache = new DekCache(10, 60_000)
    cache.set('1', 'w', dek(1))
    cache.get('1', 'w')
    cache.get('1', 'other')
    cache.get('2', 'w')
    assert.deepEqual(cache.stats(), { hits: 1, misses: 2, size: 1 })
    cache.clear()
    assert.equal(cache.stats().size, 0)
    assert.isUndefined(cache.get('1', 'w'))
  })
})

test.group('DekCache / revocation', () => {
  test('invalidate wipes every DEK and drops a DEK obtained before it', ({ assert }) => {
    const cache = new DekCache(10, 60_000)
    const held = dek(1)
    cache.set('1', 'w', held)
    const generation = cache.generation
    cache.invalidate()
    assert.equal(cache.stats().size, 0)
    assert.isUndefined(cache.get('1', 'w'))
    cache.set('2', 'x', dek(2), generation)
    assert.isUndefined(cache.get('2', 'x'), 'unwrapped before the revocation: not cached')
    cache.set('2', 'x', dek(2), cache.generation)
    assert.deepEqual(cache.get('2', 'x'), dek(2))
  })

  test('suspended: neither serves nor stores until resumed', ({ assert }) => {
    const cache = new DekCache(10, 60_000)
    cache.set('1', 'w', dek(1))
    cache.suspend()
    assert.isTrue(cache.suspended)
    assert.isUndefined(cache.get('1', 'w'))
    cache.set('2', 'x', dek(2))
    assert.equal(cache.stats().size, 0)
    const generation = cache.generation
    cache.resume()
    assert.isFalse(cache.suspended)
    cache.set('3', 'y', dek(3), generation)
    assert.isUndefined(cache.get('3', 'y'), 'obtained while suspended: not cached')
    cache.set('3', 'y', dek(3))
    assert.deepEqual(cache.get('3', 'y'), dek(3))
  })
})
