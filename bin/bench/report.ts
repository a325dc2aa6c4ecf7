/*
|--------------------------------------------------------------------------
| Results: table, targets, JSON
|--------------------------------------------------------------------------
*/
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ForegroundStats } from './load.js'
import type { PhaseResources } from './sampler.js'
import { round } from './sampler.js'

/** One measured phase. */
export interface Measurement {
  /** Stable key: published, floor-1, local, vault, … */
  key: string
  label: string
  /** Rows in the table (the scale). */
  scaleRows: number
  /** Rows the variant really processed. */
  processedRows: number
  /** Seconds for all `scaleRows` (extrapolated for the published algorithm). */
  seconds: number
  rowsPerSecond: number
  extrapolated: boolean
  /** rowsPerSecond ÷ the published algorithm's (same scale). */
  vsPublished: number | null
  /** rowsPerSecond ÷ the floor's median (same scale). */
  vsFloor: number | null
  resources: PhaseResources
  foreground: ForegroundStats | null
  details: Record<string, unknown>
}

/**
 * A measurement of one phase; ratios are filled in later by {@link addRatios}.
 */
export function measurement(
  key: string,
  label: string,
  scaleRows: number,
  processedRows: number,
  seconds: number,
  phase: { resources: PhaseResources; foreground: ForegroundStats | null },
  details: Record<string, unknown>,
  extrapolated = false
): Measurement {
  return {
    key,
    label,
    scaleRows,
    processedRows,
    seconds: round(seconds, 2),
    rowsPerSecond: Math.round(processedRows / seconds),
    extrapolated,
    vsPublished: null,
    vsFloor: null,
    resources: phase.resources,
    foreground: phase.foreground,
    details,
  }
}

/** A target with its verdict. */
export interface TargetResult {
  target: string
  measured: string
  /** null: information only. */
  pass: boolean | null
}

/**
 * The median of some numbers.
 */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/**
 * Fills in the ratios of the measurements of one scale.
 */
export function addRatios(measurements: Measurement[]) {
  const published = measurements.find((m) => m.key === 'published')
  const floors = measurements.filter((m) => m.key.startsWith('floor'))
  const floor = floors.length ? median(floors.map((m) => m.rowsPerSecond)) : null
  for (const m of measurements) {
    m.vsPublished = published ? round(m.rowsPerSecond / published.rowsPerSecond, 1) : null
    m.vsFloor = floor ? round(m.rowsPerSecond / floor, 3) : null
  }
  return floor
}

function pad(text: string, width: number, right = false) {
  return right ? text.padStart(width) : text.padEnd(width)
}

function fmt(value: number | null | undefined, digits = 0) {
  if (value === null || value === undefined) return '–'
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  })
}

/**
 * A plain-text table of measurements.
 */
export function table(measurements: Measurement[]): string {
  const header = [
    'variant',
    'rows',
    'rows/s',
    'seconds',
    '×published',
    '×floor',
    'peak RSS MB',
    'RSS +MB',
    'fg p50 ms',
    'fg p99 ms',
    'fg failed',
  ]
  const lines = measurements.map((m) => [
    m.label + (m.extrapolated ? ' *' : ''),
    fmt(m.scaleRows),
    fmt(m.rowsPerSecond),
    fmt(m.seconds, 1),
    m.vsPublished === null ? '–' : `${fmt(m.vsPublished, 1)}×`,
    m.vsFloor === null ? '–' : `${fmt(m.vsFloor * 100, 0)}%`,
    fmt(m.resources.peakRssMb, 0),
    fmt(m.resources.peakRssMb - m.resources.startRssMb, 0),
    fmt(m.foreground?.p50Ms, 1),
    fmt(m.foreground?.p99Ms, 1),
    m.foreground ? String(m.foreground.failed) : '–',
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const row = (cells: string[]) => cells.map((c, i) => pad(c, widths[i], i > 0)).join('  ')
  return [row(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(row)].join('\n')
}

/**
 * Writes the JSON results; answers the file's path.
 */
export function writeJson(dir: string, startedAt: Date, payload: unknown): string {
  mkdirSync(dir, { recursive: true })
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-')
  const file = join(dir, `bench-${stamp}.json`)
  writeFileSync(file, JSON.stringify(payload, null, 2) + '\n')
  return file
}
