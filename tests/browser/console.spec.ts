/*
|--------------------------------------------------------------------------
| The operator console in a real browser (chromium via Playwright)
|--------------------------------------------------------------------------
|
| Runs (rotations, re-encrypts) are parked mid-way by a held row (SELECT …
| FOR UPDATE): the page is looked at while the run waits at that batch,
| then the row is let go.
| Every state is screenshotted under tmp/console-screenshots/.
|
*/
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import type { Page } from 'playwright'
import { createToken } from '#tests/helpers/auth'
import { browserSkipReason, screenshotPath } from '#tests/helpers/browser'
import { holdRows, advisoryLocksReleased } from '#tests/helpers/pg_sessions'
import { createKek, kekName, seed } from '#tests/helpers/rotation'
import { waitFor } from '#tests/helpers/wait'
import { KeyRotationService } from '#services/key_rotation_service'
import { ReencryptService } from '#services/reencrypt_service'
import { ApprovalService } from '#services/approval_service'
import { Clock } from '#services/clock'
import { ShiftedClock } from '#tests/helpers/clock'
import { clockAheadOfAuditTrail } from '#tests/helpers/governance_fixture'

const skipReason = browserSkipReason()

/** Signs in through the form with `token`; resolves on the console page. */
async function signIn(page: Page, token: string) {
  await page.goto('/console/sign-in')
  await page.getByLabel('Access token').fill(token)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL('**/console')
}

/**
 * A KEK with 1000 rows and a rotation in batches of 50 parked at the batch
 * holding row #720; `fullSpeed`: no sleep or nice ratio (else the config's pacing).
 */
async function parkedRotation(options: { fullSpeed?: boolean } = {}) {
  const rows = 1000
  const kek = kekName('ui')
  await createKek(kek)
  const seeded = await seed(kek, rows)
  const ids = [...seeded.keys()]
  const hold = await holdRows([ids[720]])
  const rotations = await app.container.make(KeyRotationService)
  const pacing = options.fullSpeed ? { sleepMs: 0, niceRatio: 0, maxRate: 0 } : {}
  const run = await rotations.start(kek, { batchSize: 50, ...pacing })
  await hold.blocked()
  return { kek, run, hold, rotations }
}

/**
 * A re-encrypt of a KEK with 1000 rows to another, in batches of 50 at full
 * speed, parked at the batch holding row #720 (its promise settles when it stops).
 */
async function parkedReencrypt() {
  const from = kekName('ui-re')
  const to = kekName('ui-re-to')
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

/** Resolves once the run is no longer running (its row says so). */
async function runEnded(rotations: KeyRotationService, id: string) {
  return waitFor(
    async () => {
      const run = await rotations.find(id)
      return run.status !== 'running' ? run : null
    },
    { what: `run ${id} to end` }
  )
}

test.group('console in a browser', (group) => {
  group.tap((t) => t.skip(skipReason !== null, skipReason ?? undefined))

  test('a request without a session is redirected to sign-in', async ({ visit, assert }) => {
    const page = await visit('/console')
    await page.waitForURL('**/console/sign-in')
    assert.match(page.url(), /\/console\/sign-in$/)
    await page.getByLabel('Access token').waitFor()
    await page.screenshot({ path: screenshotPath('01-sign-in'), fullPage: true })

    const live = await page.goto('/console/live')
    assert.match(page.url(), /\/console\/sign-in$/, 'the live poll also sends to sign-in')
    assert.equal(live?.status(), 200)
  })

  test('sign in with a token: session cookie only, nothing secret in the page', async ({
    visit,
    browserContext,
    assert,
  }) => {
    const token = await createToken(['rotation:read', 'rotation:admin'], { name: 'ui-admin' })
    const page = await visit('/console/sign-in')

    // A wrong token is refused on the form, without a session.
    await page.getByLabel('Access token').fill('rwp_bm90LWEtdG9rZW4.bm90LWEtc2VjcmV0')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.locator('#sign-in-error').waitFor()
    assert.include(await page.locator('#sign-in-error').innerText(), 'E_CONSOLE_SIGN_IN_REFUSED')

    await signIn(page, token)
    await page.locator('#keks').waitFor()
    for (const id of ['runs', 'keks', 'approvals', 'audit', 'health']) {
      assert.isTrue(await page.locator(`section#${id}`).isVisible(), `${id} panel shown`)
    }
    assert.include(await page.locator('header .who').innerText(), 'ui-admin')
    const html = await page.content()
    assert.notInclude(html, token, 'the token is not in the page')
    assert.notInclude(page.url(), token)

    const cookies = await browserContext.cookies()
    const session = cookies.find((c) => c.name === 'rewrap_console')
    assert.exists(session, 'a session cookie')
    assert.isTrue(session!.httpOnly)
    assert.equal(session!.sameSite, 'Strict')
    assert.notInclude(JSON.stringify(cookies), token, 'no cookie carries the token')
    assert.match(await page.locator('#audit-verdict').innerText(), /Chain verified: \d+ records/)
    assert.include(await page.locator('#health').innerText(), 'database')
    await page.screenshot({ path: screenshotPath('02-signed-in'), fullPage: true })

    // On a phone: one column, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 })
    const overflow = await page.evaluate(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth'
    )
    assert.equal(overflow, 0, 'no horizontal scrolling at 390 px')
    await page.screenshot({ path: screenshotPath('02b-phone'), fullPage: true })

    // Keyboard: the skip link comes first and leads to the panels.
    await page.keyboard.press('Tab')
    const focused = await page.evaluate(
      'document.activeElement && document.activeElement.textContent'
    )
    assert.equal(focused, 'Skip to content')

    // Sign out: the session is gone, the console sends to sign-in again.
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.waitForURL('**/console/sign-in')
    await page.goto('/console')
    assert.match(page.url(), /\/console\/sign-in$/)
  })

  test('watch a rotation progress to completion on the page', async ({
    visit,
    assert,
    cleanup,
  }) => {
    const token = await createToken(['rotation:read', 'rotation:admin'])
    const { kek, run, hold, rotations } = await parkedRotation({ fullSpeed: true })
    cleanup(() => hold.release())
    const page = await visit('/console/sign-in')
    await signIn(page, token)

    const card = page.locator(`#running [data-run-id="${run.id}"]`)
    await card.waitFor()
    assert.include(await card.innerText(), kek)
    assert.include(await card.locator('[data-field="rows"]').innerText(), '700 / 1000 rows (70%)')
    assert.equal(await card.locator('progress').getAttribute('value'), '70')
    assert.equal(await card.locator('[data-field="pacing"]').innerText(), 'full speed')
    await page.screenshot({ path: screenshotPath('03-rotation-running'), fullPage: true })

    await hold.release()
    // The page follows by itself (its poll), no reload by the test.
    const row = page.locator(`#recent-runs tr[data-run-id="${run.id}"]`)
    await row.filter({ hasText: 'completed' }).waitFor({ timeout: 60_000 })
    assert.equal(await card.count(), 0, 'no longer shown as running')
    assert.include(await row.innerText(), '1000 / 1000')
    const finished = await runEnded(rotations, run.id)
    assert.equal(finished.status, 'completed')
    // (Other specs of the suite may leave stalled runs of their own KEKs on the page.)
    await page.screenshot({ path: screenshotPath('04-rotation-completed'), fullPage: true })
    await advisoryLocksReleased()
  }).timeout(120_000)

  test('cancel a running rotation from the page', async ({ visit, assert, cleanup }) => {
    const token = await createToken(['rotation:read', 'rotation:admin'])
    const { run, hold, rotations } = await parkedRotation()
    cleanup(() => hold.release())
    const page = await visit('/console/sign-in')
    await signIn(page, token)

    await page.getByRole('button', { name: `Cancel run #${run.id}` }).click()
    // The form posts and comes back to /console (already the URL): wait for the notice itself.
    await page
      .locator('main [role=status]', { hasText: `Cancel requested for run #${run.id}` })
      .waitFor()
    await page.locator(`#running [data-run-id="${run.id}"] [data-field="cancel-state"]`).waitFor()
    assert.equal(
      await page.locator(`#running [data-run-id="${run.id}"] [data-field="pacing"]`).innerText(),
      'paced',
      'started with the configured pacing'
    )
    await page.screenshot({ path: screenshotPath('05-cancel-requested'), fullPage: true })

    await hold.release()
    const row = page.locator(`#recent-runs tr[data-run-id="${run.id}"]`)
    await row.filter({ hasText: 'cancelled' }).waitFor({ timeout: 60_000 })
    const stopped = await runEnded(rotations, run.id)
    assert.equal(stopped.status, 'cancelled')
    assert.equal(stopped.cancelledBy, 'operator')
    assert.equal(stopped.rewrapped, 750, 'stopped after the parked batch')
    await page.screenshot({ path: screenshotPath('06-cancelled'), fullPage: true })
    await advisoryLocksReleased()
  }).timeout(120_000)

  test('a rotation:read token sees no admin controls and cannot cancel', async ({
    visit,
    assert,
    cleanup,
  }) => {
    const token = await createToken(['rotation:read'], { name: 'ui-reader' })
    const { run, hold, rotations } = await parkedRotation({ fullSpeed: true })
    cleanup(() => hold.release())
    const page = await visit('/console/sign-in')
    await signIn(page, token)

    const card = page.locator(`#running [data-run-id="${run.id}"]`)
    await card.waitFor()
    assert.equal(await page.getByRole('button', { name: /Cancel/ }).count(), 0)
    assert.equal(await page.locator('form[action*="/cancel"]').count(), 0)
    await page.screenshot({ path: screenshotPath('07-read-only'), fullPage: true })

    // Posting the cancel form by hand (with a valid CSRF field) is refused.
    const csrf = await page.locator('input[name=_csrf]').first().inputValue()
    const status = await page.evaluate(
      async ({ id, csrf: field }) => {
        const res = await fetch(`/console/runs/${id}/cancel`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ _csrf: field }),
          redirect: 'manual',
        })
        return res.status
      },
      { id: run.id, csrf }
    )
    assert.equal(status, 403)
    const after = await rotations.find(run.id)
    assert.isFalse(after.cancelRequested)

    await hold.release()
    const finished = await runEnded(rotations, run.id)
    assert.equal(finished.status, 'completed')
    await advisoryLocksReleased()
  }).timeout(120_000)

  test('watch a running re-encrypt and cancel it from the page (keyboard)', async ({
    visit,
    assert,
    cleanup,
  }) => {
    const token = await createToken(['rotation:read', 'rotation:admin'])
    const { from, to, run, hold, running } = await parkedReencrypt()
    cleanup(() => hold.release())
    const page = await visit('/console/sign-in')
    await signIn(page, token)

    const card = page.locator(`#running-reencrypts [data-reencrypt-id="${run.id}"]`)
    await card.waitFor()
    assert.include(await card.locator('h3').innerText(), `Re-encrypt #${run.id} · ${from} → ${to}`)
    assert.include(await card.locator('[data-field="rows"]').innerText(), '700 / 1000 rows (70%)')
    assert.equal(await card.getByLabel('Progress').getAttribute('value'), '70')
    assert.equal(await card.locator('[data-field="pacing"]').innerText(), 'full speed')
    assert.equal(await card.locator('[data-field="failed"]').innerText(), '0 failed')
    assert.include(
      await page.locator(`#recent-reencrypts tr[data-reencrypt-id="${run.id}"]`).innerText(),
      'running'
    )
    await page.locator('#reencrypts').screenshot({ path: screenshotPath('09-reencrypt-running') })

    // By keyboard: focus the button, press Enter.
    const cancel = page.getByRole('button', { name: `Cancel re-encrypt #${run.id}` })
    await cancel.focus()
    await page.keyboard.press('Enter')
    await page
      .locator('main [role=status]', { hasText: `Cancel requested for re-encrypt #${run.id}` })
      .waitFor()
    await card.locator('[data-field="cancel-state"]').waitFor()
    await page.locator('#reencrypts').screenshot({ path: screenshotPath('10-reencrypt-cancel') })

    await hold.release()
    // The page follows by itself (its poll): the card goes, the recent row says cancelled.
    const row = page.locator(`#recent-reencrypts tr[data-reencrypt-id="${run.id}"]`)
    await row.filter({ hasText: 'cancelled' }).waitFor({ timeout: 60_000 })
    assert.equal(await card.count(), 0, 'no longer shown as running')
    assert.include(await row.innerText(), '750 / 1000')
    const stopped = await running
    assert.equal(stopped.status, 'cancelled')
    assert.equal(stopped.cancelledBy, 'operator')
    assert.equal(stopped.reencrypted, 750, 'stopped after the parked batch')
    await page.locator('#reencrypts').screenshot({ path: screenshotPath('11-reencrypt-cancelled') })
    await advisoryLocksReleased()
  }).timeout(120_000)

  test('a rotation:read token sees a running re-encrypt but no cancel, and cannot cancel it', async ({
    visit,
    assert,
    cleanup,
  }) => {
    const token = await createToken(['rotation:read'])
    const { run, hold, running, service } = await parkedReencrypt()
    cleanup(() => hold.release())
    const page = await visit('/console/sign-in')
    await signIn(page, token)

    await page.locator(`#running-reencrypts [data-reencrypt-id="${run.id}"]`).waitFor()
    assert.equal(await page.getByRole('button', { name: /Cancel/ }).count(), 0)
    assert.equal(await page.locator('form[action*="/cancel"]').count(), 0)

    const csrf = await page.locator('input[name=_csrf]').first().inputValue()
    const answer = await page.evaluate(
      async ({ id, csrf: field }) => {
        const res = await fetch(`/console/reencrypts/${id}/cancel`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ _csrf: field }),
          redirect: 'manual',
        })
        return { status: res.status, body: await res.text() }
      },
      { id: run.id, csrf }
    )
    assert.equal(answer.status, 403)
    assert.include(answer.body, 'E_FORBIDDEN')
    const after = await service.find(run.id)
    assert.isFalse(after.cancelRequested)

    await hold.release()
    const finished = await running
    assert.equal(finished.status, 'completed')
    await advisoryLocksReleased()
  }).timeout(120_000)

  test('the approvals panel: dual control warning, policies and a pending request', async ({
    visit,
    assert,
    cleanup,
  }) => {
    // A real pending request (ApprovalService, as approval:request makes one), made at a time
    // after every request other specs of the suite made (they move their clocks forward), so it
    // is the newest the panel lists. The clock moves before sign-in: a sign-in lasts 12 h of the
    // app's clock, and the audit trail may be days ahead of the wall clock by now.
    const clock = new ShiftedClock()
    await clockAheadOfAuditTrail(clock)
    app.container.swap(Clock, () => clock)
    cleanup(() => app.container.restore(Clock))
    const token = await createToken(['rotation:read'])
    const page = await visit('/console/sign-in')
    await signIn(page, token)

    // The suite runs with DUAL_CONTROL=off: dual control is not enforced; the configured policies show.
    assert.include(await page.locator('#dual-control-off').innerText(), 'Dual control is off')
    const policies = await page.locator('#policies').innerText()
    assert.match(policies, /rotate\s+cto \+ security_officer/)

    const approvals = await app.container.make(ApprovalService)
    const request = await approvals.create({
      action: 'rotate',
      kek: 'orders',
      params: {},
      requester: 'alice',
    })
    await page.reload()
    const row = page.locator(`#approvals [data-request-id="${request.said}"]`)
    await row.waitFor()
    assert.include(await row.innerText(), 'rotate of orders')
    assert.equal(await row.locator('[data-field="missing"]').innerText(), 'cto, security_officer')
    assert.include(await row.innerText(), 'nobody yet')
    await page.locator('#approvals').screenshot({ path: screenshotPath('08-pending-approval') })
  })
})
