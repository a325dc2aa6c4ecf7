// Rewrap console: live updates by polling /console/live (same-origin, session cookie).
// While a run (rotation or re-encrypt) is running its bar, rate and ETA follow it; when the
// set of running runs changes (one finished, was cancelled, or a new one started) the panels
// are reloaded.
;(function () {
  'use strict'
  const interval = Number(document.body.dataset.pollMs) || 1000
  const main = document.getElementById('main')
  if (!main) return

  function humanSeconds(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—'
    const s = Math.max(0, Math.round(seconds))
    const pad = (n) => String(n).padStart(2, '0')
    if (s < 60) return s + 's'
    if (s < 3600) return Math.floor(s / 60) + 'm ' + pad(s % 60) + 's'
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + pad(Math.floor((s % 3600) / 60)) + 'm'
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h'
  }

  // Rotation and re-encrypt runs number apart: a run is its kind and id.
  function shownRunning() {
    const rotations = Array.from(document.querySelectorAll('#running [data-run-id]'))
    const reencrypts = Array.from(
      document.querySelectorAll('#running-reencrypts [data-reencrypt-id]')
    )
    return runKeys(
      rotations.map((el) => el.dataset.runId),
      reencrypts.map((el) => el.dataset.reencryptId)
    )
  }

  function runKeys(rotationIds, reencryptIds) {
    return rotationIds
      .map((id) => 'rotation:' + id)
      .concat(reencryptIds.map((id) => 'reencrypt:' + id))
      .sort()
      .join(',')
  }

  function setText(root, field, text) {
    const el = root.querySelector('[data-field="' + field + '"]')
    if (el && el.textContent !== text) el.textContent = text
  }

  async function reloadPanels() {
    const res = await fetch('/console', {
      credentials: 'same-origin',
      headers: { accept: 'text/html' },
    })
    if (res.redirected || !res.ok) return (window.location.href = res.url || '/console')
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html')
    const fresh = doc.getElementById('main')
    if (fresh) {
      main.innerHTML = fresh.innerHTML
      main.dataset.generatedAt = fresh.dataset.generatedAt || ''
    }
  }

  // One running run's card follows the live figures.
  function follow(el, run) {
    if (!el) return
    const bar = el.querySelector('progress')
    if (bar) {
      bar.value = run.percent
      bar.textContent = run.percent + '%'
    }
    setText(el, 'rows', run.done + ' / ' + run.total + ' rows (' + run.percent + '%)')
    setText(el, 'rate', run.rowsPerSecond + ' rows/s')
    setText(el, 'eta', humanSeconds(run.etaSeconds))
    setText(el, 'pacing', run.pacing)
    setText(el, 'outcome', run.outcome)
    const failed = el.querySelector('[data-field="failed"]')
    if (failed) {
      setText(el, 'failed', run.failed + ' failed')
      failed.classList.toggle('bad', run.failed > 0)
    }
  }

  async function poll() {
    try {
      const res = await fetch('/console/live', {
        credentials: 'same-origin',
        headers: { accept: 'application/json' },
      })
      if (res.redirected) return (window.location.href = '/console/sign-in')
      if (res.ok) {
        const live = await res.json()
        const reencrypts = live.runningReencrypts || []
        const ids = runKeys(
          live.running.map((run) => run.id),
          reencrypts.map((run) => run.id)
        )
        if (ids !== shownRunning()) {
          await reloadPanels()
        } else {
          for (const run of live.running) {
            follow(document.querySelector('#running [data-run-id="' + run.id + '"]'), run)
          }
          for (const run of reencrypts) {
            follow(
              document.querySelector('#running-reencrypts [data-reencrypt-id="' + run.id + '"]'),
              run
            )
          }
        }
      }
    } catch {
      // Offline or restarting: try again at the next tick.
    }
    setTimeout(poll, interval)
  }

  setTimeout(poll, interval)
})()
