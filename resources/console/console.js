// Rewrap console: live updates by polling /console/live (same-origin, session cookie).
// While a run is running its bar, rate and ETA follow it; when the set of running runs
// changes (one finished, was cancelled, or a new one started) the panels are reloaded.
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

  function shownRunning() {
    return Array.from(document.querySelectorAll('#running [data-run-id]'))
      .map((el) => el.dataset.runId)
      .sort()
      .join(',')
  }

  function setText(root, field, text) {
    const el = root.querySelector('[data-field="' + field + '"]')
    if (el && el.textContent !== text) el.textContent = text
  }

  async function reloadPanels() {
    const res = await fetch('/console', { credentials: 'same-origin', headers: { accept: 'text/html' } })
    if (res.redirected || !res.ok) return (window.location.href = res.url || '/console')
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html')
    const fresh = doc.getElementById('main')
    if (fresh) {
      main.innerHTML = fresh.innerHTML
      main.dataset.generatedAt = fresh.dataset.generatedAt || ''
    }
  }

  async function poll() {
    try {
      const res = await fetch('/console/live', { credentials: 'same-origin', headers: { accept: 'application/json' } })
      if (res.redirected) return (window.location.href = '/console/sign-in')
      if (res.ok) {
        const live = await res.json()
        const ids = live.running.map((run) => run.id).sort().join(',')
        if (ids !== shownRunning()) {
          await reloadPanels()
        } else {
          for (const run of live.running) {
            const el = document.querySelector('#running [data-run-id="' + run.id + '"]')
            if (!el) continue
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
