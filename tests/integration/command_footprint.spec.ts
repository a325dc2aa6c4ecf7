/*
|--------------------------------------------------------------------------
| What a `node ace rotate:kek` process loads (real `node ace` child)
|--------------------------------------------------------------------------
|
| The rotate:kek process has a peak-RSS target (≤ 200 MB, boot included;
| docs/benchmarks.md). Its boot and its command must not load what only
| other commands or drivers use: the other command files, signify-ts'
| barrel (mathjs, ~45 MB), the Vault / Azure / AWS clients on the local
| KMS. The child records every module URL it resolves (a resolve hook
| given with --import) and writes them when it exits.
|
*/
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from '@japa/runner'
import { spawnAce } from '#tests/helpers/ace_child'

const HOOK = `
import { registerHooks } from 'node:module'
import { writeFileSync } from 'node:fs'
const seen = new Set()
registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context)
    seen.add(resolved.url)
    return resolved
  },
})
process.on('exit', () => writeFileSync(process.env.LOADED_URLS_FILE, [...seen].join('\\n')))
`

const COMMANDS = fileURLToPath(new URL('../../commands/', import.meta.url))

/** The module URLs `node ace <argv>` resolved, and its exit code. */
async function loadedBy(argv: string[]) {
  const file = join(tmpdir(), `rewrap-loaded-urls-${process.pid}-${Date.now()}.txt`)
  const child = spawnAce(argv, {
    LOADED_URLS_FILE: file,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=data:text/javascript,${encodeURIComponent(HOOK)}`,
  })
  const code = await child.exited
  return { code, output: child.output(), urls: readFileSync(file, 'utf8').split('\n') }
}

test.group('rotate:kek process / modules it loads', () => {
  test('its own command file only; no signify-ts barrel, no remote KMS client', async ({
    assert,
  }) => {
    const { code, output, urls } = await loadedBy(['rotate:kek', '--help'])
    assert.equal(code, 0, output)
    assert.include(output, 'rotate:kek')
    // The app booted (startApp) and the audit path's primitives are there.
    assert.isTrue(urls.some((url) => url.includes('/app/governance/signify.')))
    const commands = urls
      .filter((url) => url.startsWith('file:') && fileURLToPath(url).startsWith(COMMANDS))
      .map((url) => fileURLToPath(url).slice(COMMANDS.length))
    assert.deepEqual(commands, ['rotate_kek.ts'])
    for (const pkg of ['mathjs', '@aws-sdk/client-kms', '@azure/keyvault-keys', 'node-vault']) {
      assert.isFalse(
        urls.some((url) => url.includes(`/node_modules/${pkg}/`)),
        `${pkg} was loaded`
      )
    }
  })
})
