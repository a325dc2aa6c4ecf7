import { test } from '@japa/runner'
import {
  mapVersions,
  retirementChanges,
  toKekInfo,
  type KeyVersionProperties,
} from '#kms/drivers/azure_versions'
import { formatAzureWrapped, parseAzureWrapped } from '#kms/drivers/azure_wrapped'

const at = (s: number) => new Date(s * 1000)
const tagged = (id: string, n: number | string, created: number, enabled = true) =>
  ({
    version: id,
    tags: { 'rewrap-version': String(n) },
    createdOn: at(created),
    enabled,
  }) as KeyVersionProperties

test.group('Key Vault versions → Rewrap versions', () => {
  test('tags give the integer versions, in any listing order; untagged versions are foreign', ({
    assert,
  }) => {
    const map = mapVersions([
      tagged('c', 3, 30),
      { version: 'portal', tags: {}, createdOn: at(40), enabled: true },
      tagged('a', 1, 10),
      tagged('b', 2, 20),
      tagged('bad', 'x2', 25),
    ])
    assert.deepEqual(
      map.versions.map((v) => [v.version, v.versionId]),
      [
        [1, 'a'],
        [2, 'b'],
        [3, 'c'],
      ]
    )
    assert.equal(map.latestVersion, 3)
    assert.equal(map.foreign, 2)
    assert.equal(map.minDecryptionVersion, 1)
  })

  test('two versions with one tag: the earliest is canonical, both stay unwrappable', ({
    assert,
  }) => {
    const map = mapVersions([tagged('late', 2, 21), tagged('a', 1, 10), tagged('early', 2, 20)])
    assert.equal(map.versions.find((v) => v.version === 2)?.versionId, 'early')
    assert.equal(map.byId.get('late')?.version, 2)
    const tie = mapVersions([tagged('zz', 1, 10), tagged('aa', 1, 10)])
    assert.equal(tie.versions[0].versionId, 'aa')
  })

  test('min decryption version: one above the highest disabled version', ({ assert }) => {
    const map = mapVersions([
      tagged('a', 1, 10, false),
      tagged('b', 2, 20, false),
      tagged('c', 3, 30),
    ])
    assert.equal(map.minDecryptionVersion, 3)
    const info = toKekInfo('k', map)
    assert.deepEqual(
      info.versions.map((v) => v.version),
      [3]
    )
    assert.equal(info.minAvailableVersion, 0)
    assert.equal(info.minEncryptionVersion, 0)
  })

  test('retirement changes disable below, enable at or above, enables first', ({ assert }) => {
    const map = mapVersions([tagged('a', 1, 10, false), tagged('b', 2, 20), tagged('c', 3, 30)])
    assert.deepEqual(retirementChanges(map, 3), [{ versionId: 'b', enabled: false }])
    assert.deepEqual(retirementChanges(map, 1), [{ versionId: 'a', enabled: true }])
    assert.deepEqual(retirementChanges(map, 2), [])
  })
})

test.group('azure:vN: wrapped DEKs', () => {
  test('round trip; the version id and N are kept', ({ assert }) => {
    const bytes = Buffer.from([1, 2, 3, 250, 251])
    const text = formatAzureWrapped(7, '0123abcd', bytes)
    assert.equal(text, 'azure:v7:0123abcd:AQID-vs')
    const parsed = parseAzureWrapped(text)!
    assert.equal(parsed.version, 7)
    assert.equal(parsed.versionId, '0123abcd')
    assert.deepEqual([...parsed.bytes], [...bytes])
  })

  test('anything else is refused', ({ assert }) => {
    for (const bad of [
      'vault:v1:AQID',
      'azure:v0:ab:AQID',
      'azure:v1:ab:AQID+',
      'azure:v1::AQID',
      'azure:v1:ab:',
      'azure:v1:ab:AQJ', // not canonical base64url (stray bits)
      'azure:1:ab:AQID',
      42,
    ]) {
      assert.isNull(parseAzureWrapped(bad), String(bad))
    }
  })
})
