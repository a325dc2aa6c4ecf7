import { test } from '@japa/runner'
import * as barrel from 'signify-ts'
import * as primitives from '#app/governance/signify'

test.group('governance / signify-ts primitives without the barrel', () => {
  test('every name is the barrel’s own (same module instances)', ({ assert }) => {
    const names = Object.keys(primitives)
    assert.includeMembers(names, ['ready', 'Signer', 'Verfer', 'Siger', 'Diger', 'Counter'])
    for (const name of names) {
      assert.strictEqual(
        primitives[name as keyof typeof primitives],
        barrel[name as keyof typeof barrel],
        name
      )
    }
  })

  test('a key made through them signs what the barrel’s Verfer verifies', async ({ assert }) => {
    await primitives.ready()
    const signer = new primitives.Signer({ raw: new Uint8Array(32).fill(7), transferable: true })
    const message = primitives.b('rewrap')
    const verfer = new barrel.Verfer({ qb64: signer.verfer.qb64 })
    assert.isTrue(verfer.verify(signer.sign(message).raw, message))
    assert.instanceOf(signer, barrel.Signer)
  })
})
