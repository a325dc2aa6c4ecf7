/*
|--------------------------------------------------------------------------
| Prometheus alerting rules (docs/prometheus/rewrap.rules.yml)
|--------------------------------------------------------------------------
|
| promtool (Debian package `prometheus`; .ci/run installs it as root) checks
| the rules, runs their unit tests, lints a scrape of the real /metrics, and
| evaluates the rules on that scrape: the rules and the series names the
| app exports cannot drift apart. Without promtool the group is skipped.
|
*/
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from '@japa/runner'
import type { ApiClient } from '@japa/api-client'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { KeyRotationService } from '#services/key_rotation_service'
import { createToken } from '#tests/helpers/auth'
import { createKek, kekName, seed } from '#tests/helpers/rotation'
import { waitFor } from '#tests/helpers/wait'

const RULES = fileURLToPath(new URL('../../docs/prometheus/rewrap.rules.yml', import.meta.url))
const RULE_TESTS = fileURLToPath(
  new URL('../../docs/prometheus/rewrap.rules.test.yml', import.meta.url)
)

/** Runs promtool; answers its exit status and output. */
function promtool(args: string[], input?: string) {
  const result = spawnSync('promtool', args, { input, encoding: 'utf8' })
  return { status: result.status, output: `${result.stdout}${result.stderr}`, error: result.error }
}

function promtoolUnavailable(): string | null {
  const probe = promtool(['--version'])
  if (probe.error) {
    return 'promtool not found: install Debian package `prometheus` (.ci/run does as root)'
  }
  return probe.status === 0 ? null : `promtool --version exited ${probe.status}`
}

const unavailable = promtoolUnavailable()

/** The rewrap_* series names the rules' expressions read. */
function namesInRules(): string[] {
  const exprs = [...readFileSync(RULES, 'utf8').matchAll(/expr: >-\n((?:\s{10}.*\n)+)|expr: (.*)/g)]
  const text = exprs.map((m) => m[1] ?? m[2]).join('\n')
  return [...new Set(text.match(/\brewrap_[a-z0-9_]+/g))].sort()
}

/** An annotation template of one alert in the rules file, `{{ $labels.kek }}` filled in. */
function annotation(alert: string, key: 'summary' | 'description', kek: string) {
  const block = readFileSync(RULES, 'utf8').split('- alert: ')
  const rule = block.find((b) => b.startsWith(`${alert}\n`))!
  const template = new RegExp(`${key}: '(.*)'`).exec(rule)![1]
  return template.replaceAll('{{ $labels.kek }}', kek)
}

async function scrapeText(client: ApiClient, token: string) {
  const response = await client.get('/metrics').bearerToken(token)
  response.assertStatus(200)
  return response.text()
}

test.group('Prometheus alerting rules', (group) => {
  group.tap((t) => t.skip(unavailable !== null, unavailable ?? undefined))

  test('promtool check rules accepts every rule', ({ assert }) => {
    const check = promtool(['check', 'rules', RULES])
    assert.equal(check.status, 0, check.output)
    assert.include(check.output, 'SUCCESS: 9 rules found')
  })

  test('promtool test rules: each alert fires on its condition and none on a healthy system', ({
    assert,
  }) => {
    const run = promtool(['test', 'rules', RULE_TESTS])
    assert.equal(run.status, 0, run.output)
    assert.include(run.output, 'SUCCESS')
  })

  test('every series the rules read is on the real /metrics, and the rules judge a real scrape', async ({
    client,
    assert,
  }) => {
    // A run that leaves one row it could not rewrap (its wrapped DEK does not authenticate).
    const kek = kekName('alerts')
    await createKek(kek)
    const seeded = await seed(kek, 30)
    const ids = [...seeded.keys()]
    await db.rawQuery(
      `UPDATE vault_entries SET wrapped_dek = 'vault:v1:' || encode(sha256(id::text::bytea), 'base64') WHERE id = ?`,
      [ids[7]]
    )
    const rotations = await app.container.make(KeyRotationService)
    const run = await rotations.rotate(kek, { batchSize: 10 })
    assert.equal(run.status, 'completed_with_errors')

    const token = await createToken(['rotation:read'])
    // The audit chain gauges appear once the first periodic check (started by a scrape) is done.
    const text = await waitFor(
      async () => {
        const body = await scrapeText(client, token)
        return /^rewrap_audit_chain_ok 1$/m.test(body) ? body : null
      },
      { what: 'rewrap_audit_chain_ok on /metrics' }
    )

    const lint = promtool(['check', 'metrics'], text)
    assert.equal(lint.status, 0, `promtool check metrics:\n${lint.output}`)

    const families = new Set(
      [...text.matchAll(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) /gm)].map((m) => m[1])
    )
    const missing = namesInRules().filter((name) => !families.has(name))
    assert.deepEqual(missing, [], 'every series a rule reads is exported by the app')

    // The scrape as promtool input: this KEK's series and the unlabelled ones, constant for 30 min.
    const series = text
      .split('\n')
      .filter((line) => line.startsWith('rewrap_'))
      .map((line) => {
        const at = line.lastIndexOf(' ')
        return { series: line.slice(0, at), value: line.slice(at + 1) }
      })
      .filter(({ series: s, value }) => {
        const mine = s.includes(`kek="${kek}"`) || !s.includes('{')
        return mine && /^-?\d+(\.\d+)?$/.test(value)
      })
      .map(({ series: s, value }) => ({ series: s, values: `${value}x30` }))
    assert.includeMembers(
      series.map((s) => s.series),
      [
        `rewrap_rotation_failed_rows{kek="${kek}"}`,
        `rewrap_rotation_last_run_status{kek="${kek}",status="completed_with_errors"}`,
        `rewrap_kek_kms_reachable{kek="${kek}"}`,
        'rewrap_audit_chain_ok',
      ]
    )
    const none = (alertname: string) => ({ eval_time: '10m', alertname, exp_alerts: [] })
    const dir = mkdtempSync(join(tmpdir(), 'rewrap-rules-'))
    try {
      const unitTest = {
        rule_files: [RULES],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: series,
            alert_rule_test: [
              {
                eval_time: '10m',
                alertname: 'RewrapRotationFailedRows',
                exp_alerts: [
                  {
                    exp_labels: { severity: 'warning', kek },
                    exp_annotations: {
                      summary: annotation('RewrapRotationFailedRows', 'summary', kek),
                      description: annotation('RewrapRotationFailedRows', 'description', kek),
                    },
                  },
                ],
              },
              none('RewrapRotationFailed'),
              none('RewrapRotationStalled'),
              none('RewrapKmsUnreachable'),
              none('RewrapKekRotationOverdue'),
              none('RewrapAuditChainBroken'),
            ],
          },
        ],
      }
      // JSON is YAML.
      const file = join(dir, 'scrape.test.yml')
      writeFileSync(file, JSON.stringify(unitTest, null, 2))
      const judged = promtool(['test', 'rules', file])
      assert.equal(judged.status, 0, judged.output)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
