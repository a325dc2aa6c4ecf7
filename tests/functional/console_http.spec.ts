/*
|--------------------------------------------------------------------------
| The console over plain HTTP: redirects, CSRF, cookies, policy, assets
|--------------------------------------------------------------------------
|
| What the browser tests cannot see from inside the page: status codes,
| headers and cookies, and that the JSON API stays cookie-free.
|
*/
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import { createToken } from '#tests/helpers/auth'
import { TokenService } from '#services/token_service'
import { parseAccessToken } from '#services/access_token_grammar'
import db from '@adonisjs/lucid/services/db'
import { Clock } from '#services/clock'
import { ConsoleSignIns, SIGN_IN_LIFETIME_MS, handleHash } from '#services/console_sign_ins'
import { ShiftedClock } from '#tests/helpers/clock'
import { runPacingSink } from '#services/run_pacing_rows'
import { RotationStore } from '#services/rotation_store'
import { createKek, kekName, seed, runningRotationRow } from '#tests/helpers/rotation'
import { ReencryptService } from '#services/reencrypt_service'
import { ReencryptStore } from '#services/reencrypt_store'
import type { AuditRecord } from '#app/governance/audit_record'
import { advisoryLocksReleased, holdRows } from '#tests/helpers/pg_sessions'

const base = () => `http://${process.env.HOST}:${process.env.PORT}`

/** A cookie jar of one browser-like client. */
class Client {
  jar = new Map<string, string>()

  async fetch(path: string, init: RequestInit = {}) {
    const cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const response = await fetch(`${base()}${path}`, {
      redirect: 'manual',
      ...init,
      headers: { ...(cookie ? { cookie } : {}), ...(init.headers as Record<string, string>) },
    })
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const index = pair.indexOf('=')
      this.jar.set(pair.slice(0, index), pair.slice(index + 1))
    }
    return response
  }

  /** The sign-in form's CSRF field. */
  async csrf(): Promise<string> {
    const form = await this.fetch('/console/sign-in')
    const html = await form.text()
    return /name='_csrf' value='([^']+)'/.exec(html)![1]
  }

  async signIn(token: string) {
    const csrf = await this.csrf()
    return this.fetch('/console/sign-in', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, _csrf: csrf }),
    })
  }
}

/** The CSRF field of a console page. */
function csrfOf(html: string): string {
  return /name='_csrf' value='([^']+)'/.exec(html)![1]
}

/** The console page's HTML as `client` sees it. */
async function pageOf(client: Client): Promise<string> {
  const response = await client.fetch('/console')
  return response.text()
}

/** Posts a console form (its CSRF field from a fresh page) to `path`. */
async function postForm(client: Client, path: string) {
  const csrf = csrfOf(await pageOf(client))
  return client.fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf }),
  })
}

/**
 * A re-encrypt of 1000 rows in batches of 50, at full speed, parked at the
 * batch holding row #720 (its process, this one, holds the source KEK's lock).
 */
async function parkedReencrypt(label: string) {
  const from = kekName(`${label}-from`)
  const to = kekName(`${label}-to`)
  await createKek(from)
  await createKek(to)
  const seeded = await seed(from, 1000)
  const ids = [...seeded.keys()]
  const hold = await holdRows([ids[720]])
  const service = await app.container.make(ReencryptService)
  const running = service.reencrypt(from, to, { batchSize: 50, sleepMs: 0, niceRatio: 0 })
  running.catch(() => {})
  await hold.blocked()
  const run = (await service.findUnfinished(from))!
  return { from, to, run, hold, running, service }
}

/** The audit records of `act` about run `id`. */
async function auditOf(act: string, id: string): Promise<AuditRecord[]> {
  const { rows } = await db.rawQuery('SELECT record FROM audit_events ORDER BY seq')
  return rows
    .map((r: { record: string }) => JSON.parse(r.record) as AuditRecord)
    .filter((r: AuditRecord) => r.a.act === act && (r.a.data as { run?: string })?.run === id)
}

test.group('console over HTTP', () => {
  test('no session: the page, the live poll and a form post redirect to sign-in', async ({
    assert,
  }) => {
    const client = new Client()
    for (const [method, path] of [
      ['GET', '/console'],
      ['GET', '/console/live'],
      ['POST', '/console/runs/1/cancel'],
      ['POST', '/console/reencrypts/1/cancel'],
    ]) {
      const response = await client.fetch(path, { method })
      assert.equal(response.status, 302, `${method} ${path}`)
      assert.equal(response.headers.get('location'), '/console/sign-in')
    }
  })

  test('sign-in: CSRF required, http-only strict cookie, no token in it', async ({ assert }) => {
    const token = await createToken(['rotation:read'])
    const client = new Client()
    const form = await client.fetch('/console/sign-in')
    assert.equal(form.status, 200)
    const csp = form.headers.get('content-security-policy') ?? ''
    assert.include(csp, "script-src 'self'")
    assert.include(csp, "default-src 'none'")
    assert.include(csp, "frame-ancestors 'none'")
    const cookieLine = form.headers.getSetCookie().find((l) => l.startsWith('rewrap_console='))
    assert.exists(cookieLine)
    assert.match(cookieLine!, /HttpOnly/i)
    assert.match(cookieLine!, /SameSite=Strict/i)
    assert.match(cookieLine!, /Path=\/console/i)

    const noCsrf = await client.fetch('/console/sign-in', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    })
    assert.equal(noCsrf.status, 403)
    const refused = (await noCsrf.json()) as { errors: Array<{ code: string }> }
    assert.equal(refused.errors[0].code, 'E_BAD_CSRF_TOKEN')

    const signedIn = await client.signIn(token)
    assert.equal(signedIn.status, 303)
    assert.equal(signedIn.headers.get('location'), '/console')
    assert.notInclude([...client.jar.values()].join(';'), parseAccessToken(token)!.secret)
    const page = await client.fetch('/console')
    assert.equal(page.status, 200)
    const html = await page.text()
    assert.include(html, 'Rewrap console')
    assert.notInclude(html, token)
  })

  test('a wrong token or one without rotation:read is refused on the form (401)', async ({
    assert,
  }) => {
    const writer = await createToken(['entries:write'])
    for (const token of [writer, 'rwp_bm90LWEtdG9rZW4.bm90LWEtc2VjcmV0']) {
      const client = new Client()
      const response = await client.signIn(token)
      assert.equal(response.status, 401)
      assert.include(await response.text(), 'E_CONSOLE_SIGN_IN_REFUSED')
      const page = await client.fetch('/console')
      assert.equal(page.status, 302, 'still signed out')
    }
  })

  test('revoking the token ends its console session at once', async ({ assert }) => {
    const token = await createToken(['rotation:read'])
    const client = new Client()
    await client.signIn(token)
    const before = await client.fetch('/console')
    assert.equal(before.status, 200)
    const tokens = await app.container.make(TokenService)
    await tokens.revoke(Number(parseAccessToken(token)!.id))
    const after = await client.fetch('/console')
    assert.equal(after.status, 302)
    assert.equal(after.headers.get('location'), '/console/sign-in')
  })

  test('sign-out ends the session on the server: a cookie from before it no longer signs in', async ({
    assert,
  }) => {
    // A live poll in flight while the operator signs out answers with the
    // cookie it was sent; a copied cookie is the same bytes. Neither may
    // bring the session back.
    const token = await createToken(['rotation:read'])
    const client = new Client()
    await client.signIn(token)
    const page = await client.fetch('/console')
    assert.equal(page.status, 200)
    const csrf = /name='_csrf' value='([^']+)'/.exec(await page.text())![1]
    const before = new Map(client.jar)

    const out = await client.fetch('/console/sign-out', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf }),
    })
    assert.equal(out.status, 303)
    assert.equal(out.headers.get('location'), '/console/sign-in')

    const replay = new Client()
    replay.jar = before
    for (const path of ['/console', '/console/live']) {
      const response = await replay.fetch(path)
      assert.equal(response.status, 302, `${path} with the cookie from before sign-out`)
      assert.equal(response.headers.get('location'), '/console/sign-in')
    }
    const after = await client.fetch('/console')
    assert.equal(after.status, 302, 'the signed-out browser too')
  })

  test('a sign-in ends after its lifetime however active; the table holds no handle', async ({
    assert,
    cleanup,
  }) => {
    const clock = new ShiftedClock()
    // A known handle: the row must hold its SHA-256, never the handle itself.
    const signIns = new ConsoleSignIns(clock)
    const handleBytes = Buffer.alloc(32, 7)
    signIns.random = () => Buffer.from(handleBytes)
    app.container.swap(Clock, () => clock)
    app.container.swap(ConsoleSignIns, () => signIns)
    cleanup(() => {
      app.container.restore(Clock)
      app.container.restore(ConsoleSignIns)
    })
    const token = await createToken(['rotation:read'])
    const client = new Client()
    await client.signIn(token)
    const rows = await db
      .from('console_sign_ins')
      .where('token_id', Number(parseAccessToken(token)!.id))
    assert.lengthOf(rows, 1)
    const handle = handleBytes.toString('base64url')
    assert.deepEqual(rows[0].handle_hash, handleHash(handle), 'the SHA-256 of the handle')
    const stored = JSON.stringify(rows[0])
    assert.notInclude(stored, handle)
    assert.notInclude(stored, parseAccessToken(token)!.secret)
    assert.notInclude([...client.jar.values()].join(';'), handle, 'the cookie is encrypted')

    clock.offsetMs = SIGN_IN_LIFETIME_MS - 60_000
    const within = await client.fetch('/console')
    assert.equal(within.status, 200, 'within its lifetime')
    clock.offsetMs = SIGN_IN_LIFETIME_MS + 1_000
    const late = await client.fetch('/console')
    assert.equal(late.status, 302, 'past its lifetime')
    assert.equal(late.headers.get('location'), '/console/sign-in')
  })

  test('signing in again over a live sign-in ends the first: its cookie no longer signs in', async ({
    assert,
  }) => {
    const reader = await createToken(['rotation:read'])
    const admin = await createToken(['rotation:read', 'rotation:admin'])
    const client = new Client()
    await client.signIn(reader)
    const first = new Map(client.jar)
    const again = await client.signIn(admin)
    assert.equal(again.status, 303)
    const page = await client.fetch('/console')
    assert.equal(page.status, 200, 'the second sign-in holds')

    const replay = new Client()
    replay.jar = first
    const old = await replay.fetch('/console')
    assert.equal(old.status, 302, 'the cookie of the first sign-in is worth nothing')
    const rows = await db
      .from('console_sign_ins')
      .where('token_id', Number(parseAccessToken(reader)!.id))
    assert.lengthOf(rows, 0, "the first sign-in's row is gone")
  })

  test('a sign-in for a token deleted since it was verified is refused, not a 500', async ({
    assert,
  }) => {
    const signIns = await app.container.make(ConsoleSignIns)
    assert.isNull(await signIns.start('999999999'))
  })

  test('the JSON API sets no cookie and keeps its policy', async ({ assert }) => {
    const token = await createToken(['rotation:read'])
    const response = await fetch(`${base()}/rotations/status`, {
      headers: { authorization: `Bearer ${token}` },
    })
    assert.equal(response.status, 200)
    assert.deepEqual(response.headers.getSetCookie(), [])
    assert.include(response.headers.get('content-security-policy') ?? '', "form-action 'none'")
  })

  test('a running run paced by its latency budget shows its duty next to its progress (page and live poll)', async ({
    assert,
  }) => {
    const token = await createToken(['rotation:read'])
    const kek = kekName('console-duty')
    await createKek(kek)
    const store = new RotationStore()
    const run = await runningRotationRow(kek)
    try {
      await runPacingSink(
        'rotation',
        run.id,
        1.2
      )({ duty: 0.375, p99Ms: 6, baselineP99Ms: 5, baselineAgeMs: 0, judgement: 'slower' })
      const client = new Client()
      const signedIn = await client.signIn(token)
      assert.equal(signedIn.status, 303)
      const live = await client.fetch('/console/live', { headers: { accept: 'application/json' } })
      assert.equal(live.status, 200)
      const body = (await live.json()) as { running: Array<Record<string, unknown>> }
      const shown = body.running.find((r) => r.id === run.id)
      assert.exists(shown)
      assert.equal(shown!.duty, 0.375)
      assert.equal(shown!.pacing, 'paced · duty 38 %')
      const pageResponse = await client.fetch('/console')
      const page = await pageResponse.text()
      const card = page.slice(page.indexOf(`data-run-id="${run.id}"`))
      assert.include(card.slice(0, 2_000), '<span data-field="pacing">paced · duty 38 %</span>')
    } finally {
      await store.update(run.id, { status: 'failed', finished_at: new Date() })
    }
  })

  test('a re-encrypt paced by its latency budget shows its duty; one whose process died shows stalled', async ({
    assert,
  }) => {
    const from = kekName('console-re-duty')
    const to = kekName('console-re-duty-to')
    await createKek(from)
    await createKek(to)
    // What a killed process leaves behind: a `running` row and no holder of its lock.
    const store = new ReencryptStore()
    const run = await store.createRun({ fromKek: from, toKek: to, totalRows: 300, options: {} })
    try {
      await runPacingSink(
        're-encrypt',
        run.id,
        1.2
      )({ duty: 0.375, p99Ms: 6, baselineP99Ms: 5, baselineAgeMs: 0, judgement: 'slower' })
      const client = new Client()
      await client.signIn(await createToken(['rotation:read']))
      const live = await client.fetch('/console/live', { headers: { accept: 'application/json' } })
      const body = (await live.json()) as { runningReencrypts: Array<Record<string, unknown>> }
      const shown = body.runningReencrypts.find((r) => r.id === run.id)
      assert.include(shown!, {
        outcome: 'stalled',
        duty: 0.375,
        pacing: 'paced · duty 38 %',
        etaSeconds: null,
      })
      const page = await pageOf(client)
      const card = page.slice(page.indexOf(`data-reencrypt-id="${run.id}"`)).slice(0, 3_000)
      assert.include(card, '<span data-field="pacing">paced · duty 38 %</span>')
      assert.match(card, /class="badge bad" data-field="outcome">stalled</)
    } finally {
      await store.update(run.id, { status: 'failed', finished_at: new Date() })
    }
  })

  test('a running re-encrypt is on the page and in the live poll; rotation:read sees no cancel and a posted one is 403', async ({
    assert,
    cleanup,
  }) => {
    const { from, to, run, hold, running, service } = await parkedReencrypt('console-re')
    cleanup(() => hold.release())
    const reader = new Client()
    const signedIn = await reader.signIn(await createToken(['rotation:read']))
    assert.equal(signedIn.status, 303)

    const live = await reader.fetch('/console/live', { headers: { accept: 'application/json' } })
    assert.equal(live.status, 200)
    const body = (await live.json()) as { runningReencrypts: Array<Record<string, unknown>> }
    const shown = body.runningReencrypts.find((r) => r.id === run.id)
    assert.exists(shown, 'the running re-encrypt is in the live poll')
    assert.include(shown!, {
      fromKek: from,
      toKek: to,
      status: 'running',
      outcome: 'running',
      done: 700,
      total: 1000,
      percent: 70,
      pacing: 'full speed',
      failed: 0,
      cancelRequested: false,
    })
    assert.isNumber(shown!.rowsPerSecond)

    const html = await pageOf(reader)
    const card = html.slice(html.indexOf(`data-reencrypt-id="${run.id}"`)).slice(0, 3_000)
    assert.include(card, `Re-encrypt #${run.id} · ${from} → ${to}`)
    assert.include(card, '<span data-field="rows">700 / 1000 rows (70%)</span>')
    assert.notInclude(html, `/console/reencrypts/${run.id}/cancel`, 'no cancel form for a reader')
    assert.include(html, `<tr data-reencrypt-id="${run.id}">`, 'listed among the recent ones')

    const refused = await postForm(reader, `/console/reencrypts/${run.id}/cancel`)
    assert.equal(refused.status, 403)
    const error = (await refused.json()) as { errors: Array<{ code: string }> }
    assert.equal(error.errors[0].code, 'E_FORBIDDEN')
    const untouched = await service.find(run.id)
    assert.isFalse(untouched.cancelRequested)

    await hold.release()
    const finished = await running
    assert.equal(finished.status, 'completed')
    await advisoryLocksReleased()
  }).timeout(120_000)

  test('an admin cancels a running re-encrypt from the page: the JSON API cancel, audited the same', async ({
    assert,
    cleanup,
  }) => {
    // Two parked runs: one cancelled from the console, one through POST /reencrypts/:id/cancel.
    const viaConsole = await parkedReencrypt('console-re-cancel')
    cleanup(() => viaConsole.hold.release())
    const viaApi = await parkedReencrypt('api-re-cancel')
    cleanup(() => viaApi.hold.release())
    const admin = new Client()
    const signedIn = await admin.signIn(await createToken(['rotation:read', 'rotation:admin']))
    assert.equal(signedIn.status, 303)

    const before = await pageOf(admin)
    assert.include(before, `action="/console/reencrypts/${viaConsole.run.id}/cancel"`)
    assert.include(before, `Cancel re-encrypt #${viaConsole.run.id}</button>`)

    const posted = await postForm(admin, `/console/reencrypts/${viaConsole.run.id}/cancel`)
    assert.equal(posted.status, 303)
    assert.equal(posted.headers.get('location'), '/console')
    const after = await pageOf(admin)
    assert.include(
      after,
      `Cancel requested for re-encrypt #${viaConsole.run.id} (${viaConsole.from} → ${viaConsole.to}).`
    )
    const card = after.slice(after.indexOf(`data-reencrypt-id="${viaConsole.run.id}"`))
    assert.include(card.slice(0, 3_000), 'data-field="cancel-state"')
    const liveResponse = await admin.fetch('/console/live')
    const live = (await liveResponse.json()) as {
      runningReencrypts: Array<{ id: string; cancelRequested: boolean }>
    }
    assert.isTrue(live.runningReencrypts.find((r) => r.id === viaConsole.run.id)!.cancelRequested)

    const apiToken = await createToken(['rotation:admin'])
    const api = await fetch(`${base()}/reencrypts/${viaApi.run.id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiToken}` },
    })
    assert.equal(api.status, 202)

    await viaConsole.hold.release()
    await viaApi.hold.release()
    for (const { running } of [viaConsole, viaApi]) {
      const stopped = await running
      assert.equal(stopped.status, 'cancelled')
      assert.equal(stopped.cancelledBy, 'operator')
      assert.equal(stopped.reencrypted, 750, 'stopped after the parked batch')
    }
    const [fromConsole] = await auditOf('reencrypt.cancelled', viaConsole.run.id)
    const [fromApi] = await auditOf('reencrypt.cancelled', viaApi.run.id)
    assert.exists(fromConsole, 'the console cancel is audited')
    assert.exists(fromApi)
    const shape = (r: AuditRecord) => ({
      act: r.a.act,
      actor: r.a.actor,
      outcome: r.a.outcome,
      dataKeys: Object.keys(r.a.data ?? {}).sort(),
    })
    assert.deepEqual(shape(fromConsole), shape(fromApi))
    assert.include(fromConsole.a.data as Record<string, unknown>, {
      run: viaConsole.run.id,
      from: viaConsole.from,
      to: viaConsole.to,
      reencrypted: 750,
    })
    await advisoryLocksReleased()
  }).timeout(120_000)

  test('cancelling an unknown re-encrypt from the console is 404 E_REENCRYPT_NOT_FOUND', async ({
    assert,
  }) => {
    const admin = new Client()
    await admin.signIn(await createToken(['rotation:read', 'rotation:admin']))
    const response = await postForm(admin, '/console/reencrypts/987654321012/cancel')
    assert.equal(response.status, 404)
    const body = (await response.json()) as { errors: Array<{ code: string }> }
    assert.equal(body.errors[0].code, 'E_REENCRYPT_NOT_FOUND')
  })

  test('assets are served by the app; nothing else under /console/assets', async ({ assert }) => {
    const js = await fetch(`${base()}/console/assets/console.js`)
    assert.equal(js.status, 200)
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/)
    const css = await fetch(`${base()}/console/assets/console.css`)
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/)
    for (const file of ['package.json', '..%2F..%2F.env', 'console.ts']) {
      const response = await fetch(`${base()}/console/assets/${file}`)
      assert.equal(response.status, 404, file)
    }
  })

  test('a console form must be a form (415 otherwise)', async ({ assert }) => {
    const client = new Client()
    const response = await client.fetch('/console/sign-in', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'x' }),
    })
    assert.equal(response.status, 415)
    const body = (await response.json()) as { errors: Array<{ code: string }> }
    assert.equal(body.errors[0].code, 'E_UNSUPPORTED_MEDIA_TYPE')
  })
})
