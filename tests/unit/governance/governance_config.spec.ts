import { test } from '@japa/runner'
import { defineConfig, GOVERNED_ACTS } from '#app/governance_config'
import governanceConfig from '#config/governance'

/** The built-in role verifier, as config/governance.ts names it. */
const roleVerifier = () => import('#services/stored_role_verifier')

test.group('governance config (defineConfig)', () => {
  test('the shipped config: cto and security_officer, both required for every governed act', ({
    assert,
  }) => {
    assert.deepEqual(governanceConfig.roles, ['cto', 'security_officer'])
    for (const act of GOVERNED_ACTS) {
      assert.deepEqual(governanceConfig.required[act], ['cto', 'security_officer'], act)
    }
  })

  test('per-act overrides; the rest use defaultRequired', ({ assert }) => {
    const config = defineConfig({
      roles: ['cto', 'security_officer', 'auditor'],
      defaultRequired: ['cto'],
      required: { trim: ['cto', 'security_officer', 'security_officer'] },
      roleVerifier,
    })
    assert.deepEqual(config.required.trim, ['cto', 'security_officer', 'security_officer'])
    assert.deepEqual(config.required.rotate, ['cto'])
  })

  test('bad settings stop the boot with E_CONFIG_INVALID naming the key', ({ assert }) => {
    type Input = Omit<Parameters<typeof defineConfig>[0], 'roleVerifier'>
    const bad: Array<[Input & { roleVerifier?: unknown }, RegExp]> = [
      [{ roles: [], defaultRequired: ['cto'] }, /roles must list/],
      [{ roles: ['CTO'], defaultRequired: ['CTO'] }, /roles has a bad role name "CTO"/],
      [{ roles: ['cto', 'cto'], defaultRequired: ['cto'] }, /roles names a role twice/],
      [{ roles: ['cto'], defaultRequired: ['ciso'] }, /defaultRequired names unknown role "ciso"/],
      [{ roles: ['cto'], defaultRequired: [] }, /defaultRequired must list/],
      [
        { roles: ['cto'], defaultRequired: ['cto'], required: { rotate: ['ciso'] } },
        /required.rotate names unknown role/,
      ],
      [
        { roles: ['cto'], defaultRequired: ['cto'], required: { launch: ['cto'] } as any },
        /required.launch is not a governed act/,
      ],
      [{ roles: ['cto'], defaultRequired: ['cto'], roleVerifier: undefined }, /roleVerifier must/],
      [{ roles: ['cto'], defaultRequired: ['cto'], roleVerifier: 'builtin' }, /roleVerifier must/],
    ]
    for (const [input, message] of bad) {
      const error = (() => {
        try {
          defineConfig({ roleVerifier, ...input } as Parameters<typeof defineConfig>[0])
        } catch (caught) {
          return caught as { code: string; message: string }
        }
      })()
      assert.equal(error?.code, 'E_CONFIG_INVALID', String(message))
      assert.match(error!.message, message)
    }
  })
})
