import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { ReadinessCache } from '#services/health_service'
import { DUAL_CONTROL_ACT, DualControl } from '#services/dual_control'
import { createToken } from '#tests/helpers/auth'
import { startAppServer } from '#tests/helpers/app_server'
import { waitFor } from '#tests/helpers/wait'

/*
| Dual control on by default, never silently off (issue 12 item 6): the
| setting in GET /rotations/status, the detailed /health/ready (the
| service stays ready; anonymous callers still see {status} only),
| rewrap_dual_control_enabled, the audit record of a change, and the
| server's one warning at boot — each set explicitly (DUAL_CONTROL /
| config governance.dualControl), whatever the suite's default is.
*/

function setDualControl(on: boolean) {
  app.config.set('governance.dualControl', on)
}

async function dualControlRecords() {
  const { rows } = await db.rawQuery(
    `SELECT seq, said, prev, record FROM audit_events
      WHERE (record::json -> 'a' ->> 'act') = ? ORDER BY seq`,
    [DUAL_CONTROL_ACT]
  )
  return rows.map((row: any) => ({ ...row, seq: Number(row.seq), record: JSON.parse(row.record) }))
}

async function lastRecordedSetting() {
  const records = await dualControlRecords()
  return records.length > 0 ? records[records.length - 1].record.a.outcome : 'on'
}

function metricValue(text: string, name: string) {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? undefined : Number(line.split(' ')[1])
}

test.group('dual control: visible when off', (group) => {
  let read: string
  let initial: boolean
  group.setup(async () => {
    read = await createToken(['rotation:read'])
    initial = app.config.get('governance.dualControl')
    return () => setDualControl(initial)
  })
  group.each.setup(async () => {
    const cache = await app.container.make(ReadinessCache)
    cache.clear()
  })

  test('the shipped default is on (DUAL_CONTROL unset or anything but "off")', async ({
    assert,
  }) => {
    const { defineConfig } = await import('#app/governance_config')
    const roleVerifier = () => import('#services/stored_role_verifier')
    const config = defineConfig({ roles: ['cto'], defaultRequired: ['cto'], roleVerifier })
    assert.isTrue(config.dualControl)
    const bad = (() => {
      try {
        defineConfig({
          roles: ['cto'],
          defaultRequired: ['cto'],
          roleVerifier,
          dualControl: 'off' as any,
        })
      } catch (error) {
        return error as { code: string; message: string }
      }
    })()
    assert.equal(bad?.code, 'E_CONFIG_INVALID')
    assert.match(bad!.message, /dualControl must be true or false/)
  })

  test('GET /rotations/status, /health/ready and /metrics say off, then on', async ({
    client,
    assert,
  }) => {
    setDualControl(false)
    const status = await client.get('/rotations/status').bearerToken(read)
    status.assertStatus(200)
    assert.deepEqual(status.body().governance, {
      dualControl: 'off',
      roleVerifier: { name: 'builtin', gleifAnchored: false },
    })

    const ready = await client.get('/health/ready').bearerToken(read)
    assert.equal(ready.status(), ready.body().isHealthy ? 200 : 503)
    assert.equal(ready.body().governance.dualControl, 'off')
    assert.match(ready.body().governance.warning, /DUAL_CONTROL=off.*set DUAL_CONTROL=on/)
    const anonymous = await client.get('/health/ready')
    assert.deepEqual(Object.keys(anonymous.body()), ['status'], 'no detail without a token')

    const metrics = await client.get('/metrics').bearerToken(read)
    assert.equal(metricValue(metrics.text(), 'rewrap_dual_control_enabled'), 0)
    assert.include(metrics.text(), '# TYPE rewrap_dual_control_enabled gauge')

    setDualControl(true)
    const on = await client.get('/rotations/status').bearerToken(read)
    assert.equal(on.body().governance.dualControl, 'on')
    const readyOn = await client.get('/health/ready').bearerToken(read)
    assert.deepEqual(readyOn.body().governance, { dualControl: 'on' })
    const metricsOn = await client.get('/metrics').bearerToken(read)
    assert.equal(metricValue(metricsOn.text(), 'rewrap_dual_control_enabled'), 1)
  })

  test('a change of the setting is recorded once in the audit trail, chained', async ({
    assert,
  }) => {
    const dualControl = await app.container.make(DualControl)
    const before = await lastRecordedSetting()
    const flipped = before === 'on' ? 'off' : 'on'

    setDualControl(flipped === 'on')
    const first = await dualControl.recordIfChanged('config:DUAL_CONTROL')
    assert.deepEqual(first, { recorded: true, previous: before })
    const again = await dualControl.recordIfChanged('config:DUAL_CONTROL')
    assert.deepEqual(again, { recorded: false, previous: flipped })

    setDualControl(before === 'on')
    const back = await dualControl.recordIfChanged('config:DUAL_CONTROL')
    assert.deepEqual(back, { recorded: true, previous: flipped })

    const records = await dualControlRecords()
    const [a, b] = records.slice(-2)
    assert.equal(a.record.a.outcome, flipped)
    assert.deepEqual(a.record.a.data, {
      setting: flipped,
      previous: before,
      source: 'DUAL_CONTROL',
    })
    assert.equal(a.record.a.actor, 'config:DUAL_CONTROL')
    assert.equal(b.record.a.outcome, before)
    // Chained like every record: prev is the SAID of the record before it.
    const { rows } = await db.rawQuery('SELECT said FROM audit_events WHERE seq = ?', [a.seq - 1])
    assert.equal(a.prev, rows[0]?.said ?? '')
  })
})

test.group('dual control: the server at boot', () => {
  test('DUAL_CONTROL=off: one warning naming how to turn it on, recorded once; on again: no warning, recorded', async ({
    assert,
  }) => {
    const home = mkdtempSync(join(tmpdir(), 'rewrap-dual-'))
    const log = (file: string) => {
      try {
        return readFileSync(file, 'utf8')
      } catch {
        return ''
      }
    }
    const boot = async (setting: 'on' | 'off', n: number) => {
      const file = join(home, `server-${n}.log`)
      const server = await startAppServer({ DUAL_CONTROL: setting, LOG_FILE: file })
      try {
        // The ready hook logs whether it recorded the setting; /health/live can answer first.
        await waitFor(() => /"recorded":(true|false)/.test(log(file)), {
          timeoutMs: 30_000,
          what: 'the boot log',
        })
        const ready = await fetch(`${server.base}/health/ready`)
        assert.deepEqual(Object.keys((await ready.json()) as object), ['status'])
      } finally {
        await server.stop()
      }
      return log(file)
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line))
    }
    const saved = app.config.get<boolean>('governance.dualControl')
    try {
      setDualControl(true)
      const dualControl = await app.container.make(DualControl)
      // Start from "on" recorded (or nothing recorded: on by default).
      await dualControl.recordIfChanged('test')
      const initial = await dualControlRecords()
      const before = initial.length

      const off = await boot('off', 1)
      const warnings = off.filter((l) => /Dual control is OFF/.test(l.msg))
      assert.lengthOf(warnings, 1, JSON.stringify(off))
      assert.equal(warnings[0].level, 40)
      assert.match(warnings[0].msg, /set DUAL_CONTROL=on/)
      const afterOff = await dualControlRecords()
      assert.lengthOf(afterOff, before + 1)
      assert.equal(afterOff.at(-1)!.record.a.outcome, 'off')

      const offAgain = await boot('off', 2)
      assert.lengthOf(
        offAgain.filter((l) => /Dual control is OFF/.test(l.msg)),
        1
      )
      assert.lengthOf(await dualControlRecords(), before + 1, 'unchanged: not recorded again')

      const on = await boot('on', 3)
      assert.lengthOf(
        on.filter((l) => /Dual control is OFF/.test(l.msg)),
        0
      )
      const afterOn = await dualControlRecords()
      assert.lengthOf(afterOn, before + 2)
      assert.equal(afterOn.at(-1)!.record.a.outcome, 'on')
    } finally {
      setDualControl(saved)
      rmSync(home, { recursive: true, force: true })
    }
  }).timeout(240_000)
})
