import { readdirSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import type { BaseCommand } from '@adonisjs/core/ace'
import { getCommand, getMetaData, requestCommand } from '#app/commands/requested_command_loader'
import RotateKek from '../../commands/rotate_kek.js'

test.group('Ace / loader of the requested command', (group) => {
  group.each.teardown(() => requestCommand([]))

  test('answers the requested command (first non-flag argument) from its own file', async ({
    assert,
  }) => {
    requestCommand(['--ansi', 'rotate:kek', 'orders', '--json'])
    const metaData = await getMetaData()
    assert.deepEqual(
      metaData.map((m) => m.commandName),
      ['rotate:kek']
    )
    assert.deepEqual(metaData[0], RotateKek.serialize())
    assert.strictEqual(await getCommand(metaData[0]), RotateKek)
    assert.isNull(await getCommand({ ...metaData[0], commandName: 'kek:list' }))
  })

  test('nothing for {$self}: Ace scans ./commands as before')
    .with([
      [],
      ['--help'],
      ['list'],
      ['help', 'rotate:kek'],
      ['no:such'],
      ['../bin/x'],
      ['Kek:list'],
    ])
    .run(async ({ assert }, argv) => {
      requestCommand(argv)
      assert.deepEqual(await getMetaData(), [])
    })

  test('every command of ./commands is found by its name (its file is named after it)', async ({
    assert,
  }) => {
    const files = readdirSync(app.commandsPath()).filter((f) => /^[a-z0-9_]+\.ts$/.test(f))
    assert.isAbove(files.length, 20)
    for (const file of files) {
      const { default: command } = (await import(
        pathToFileURL(app.commandsPath(file.replace(/\.ts$/, '.js'))).href
      )) as { default: typeof BaseCommand }
      requestCommand([command.commandName, '--help'])
      const metaData = await getMetaData()
      assert.deepEqual(
        metaData.map((m) => m.commandName),
        [command.commandName],
        file
      )
      assert.strictEqual(await getCommand(metaData[0]), command, file)
    }
  })
})
