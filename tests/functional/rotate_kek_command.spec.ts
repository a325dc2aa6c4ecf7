import { test } from '@japa/runner'
import { runAce } from '#tests/helpers/ace'
import { createKek, kekName, seed, versionCounts } from '#tests/helpers/rotation'

async function rotateKek(args: string[]) {
  const { command, all } = await runAce('rotate:kek', args)
  return { command, output: all.join('\n') }
}

test.group('rotate:kek command', () => {
  test('rotates and exits 0 when every row is at the target (--json)', async ({ assert }) => {
    const kek = kekName('cli')
    await createKek(kek)
    await seed(kek, 120)
    const { command, output } = await rotateKek([kek, '--batch-size', '50', '--json'])
    assert.equal(command.exitCode, 0, output)
    const result = JSON.parse(output.split('\n').pop()!)
    assert.equal(result.status, 'completed')
    assert.equal(result.rewrapped, 120)
    assert.equal(result.targetVersion, 2)
    assert.deepEqual(await versionCounts(kek), { 2: 120 })
  })

  test('--dry-run reports counts and changes nothing', async ({ assert }) => {
    const kek = kekName('cli')
    await createKek(kek)
    await seed(kek, 30)
    const { command, output } = await rotateKek([kek, '--dry-run', '--json'])
    assert.equal(command.exitCode, 0, output)
    const plan = JSON.parse(output)
    assert.equal(plan.staleRows, 30)
    assert.equal(plan.targetVersion, 2)
    assert.isTrue(plan.dryRun)
    assert.deepEqual(await versionCounts(kek), { 1: 30 })
  })

  test('bad flags exit 1 with a message', async ({ assert }) => {
    const { command, output } = await rotateKek(['ok-name', '--batch-size', '0'])
    assert.equal(command.exitCode, 1)
    assert.include(output, 'E_VALIDATION_ERROR')
  })

  test('an unknown KEK exits 1 with E_KEK_NOT_FOUND', async ({ assert }) => {
    const { command, output } = await rotateKek([kekName('nope')])
    assert.equal(command.exitCode, 1)
    assert.include(output, 'E_KEK_NOT_FOUND')
  })

  test('--resume with nothing to resume exits 1 with the reason', async ({ assert }) => {
    const kek = kekName('cli')
    await createKek(kek)
    const { command, output } = await rotateKek([kek, '--resume'])
    assert.equal(command.exitCode, 1)
    assert.include(output, 'E_NO_ROTATION_TO_RESUME')
  })
})
