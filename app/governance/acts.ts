/*
|--------------------------------------------------------------------------
| Governed acts and the parameters that matter
|--------------------------------------------------------------------------
|
| A request names an action (`rotate`, `retire`, `unretire`, `trim`,
| `reencrypt`, the scheduler's `standing-rotation` policy, or a registry
| change: `approver`, `credential`, `credential-revocation`), a KEK (`-`
| for registry changes) and the parameters that change what the act does. Operational knobs (batch
| size, sleep, rate, nice ratio) are not governed and never appear here.
| Pure: the entry points compute the parameters of the act about to run
| with the functions below, and an approval must carry exactly those.
|
*/

/** Actions a request may name. */
export const REQUEST_ACTIONS = [
  'rotate',
  'retire',
  'unretire',
  'trim',
  'reencrypt',
  'standing-rotation',
  'approver',
  'credential',
  'credential-revocation',
] as const

/** Actions over the approver / credential registry (not about one KEK). */
export type RegistryAction = 'approver' | 'credential' | 'credential-revocation'

/** The `kek` field of a registry change's request (no KEK name can be `-`). */
export const REGISTRY_KEK = '-'

/** True when `action` changes the approver / credential registry. */
export function isRegistryAction(action: string): action is RegistryAction {
  return action === 'approver' || action === 'credential' || action === 'credential-revocation'
}

/** One of {@link REQUEST_ACTIONS}. */
export type RequestAction = (typeof REQUEST_ACTIONS)[number]

/** The config/governance.ts act whose required roles apply to an action. */
export const ACT_OF: Record<
  RequestAction,
  'rotate' | 'retire' | 'unretire' | 'trim' | 'reencrypt' | 'policy' | 'approver' | 'credential'
> = {
  'rotate': 'rotate',
  'retire': 'retire',
  'unretire': 'unretire',
  'trim': 'trim',
  'reencrypt': 'reencrypt',
  'standing-rotation': 'policy',
  'approver': 'approver',
  'credential': 'credential',
  'credential-revocation': 'credential',
}

const POSITIVE_INT = /^[1-9][0-9]{0,8}$/
const DURATION = /^[1-9][0-9]{0,5}(s|m|h|d)$/
const SAID = /^E[A-Za-z0-9_-]{43}$/
const KEK = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/** Per action: parameter name → [required, pattern, what it is]. */
const PARAMS: Record<RequestAction, Record<string, [boolean, RegExp, string]>> = {
  'rotate': {
    target_version: [false, POSITIVE_INT, 'a version number'],
    rotate: [false, /^false$/, '"false" (rewrap only, no new version)'],
  },
  'retire': {},
  'unretire': { to: [false, POSITIVE_INT, 'a version number'] },
  'trim': {},
  'reencrypt': { to: [true, KEK, 'the target KEK name'] },
  'standing-rotation': {
    cryptoperiod: [true, DURATION, 'a duration such as 90d'],
    until: [true, /^\d{4}-\d{2}-\d{2}(T[0-9:.]+Z)?$/, 'a date (2027-01-31 or an ISO UTC time)'],
  },
  'approver': {
    aid: [true, SAID, 'the AID to register'],
    authority: [false, /^true$/, '"true" (register a role authority)'],
  },
  'credential': { said: [true, SAID, 'the SAID of the credential to register'] },
  'credential-revocation': { said: [true, SAID, 'the SAID of the credential to revoke'] },
}

/** True when `value` names an action. */
export function isRequestAction(value: unknown): value is RequestAction {
  return typeof value === 'string' && (REQUEST_ACTIONS as readonly string[]).includes(value)
}

/**
 * Checks a request's parameters for its action: only the governed names,
 * each well-formed, every required one present. Returns the problem in one
 * line, or null when they are fine.
 */
export function paramsProblem(
  action: RequestAction,
  params: Readonly<Record<string, string>>
): string | null {
  const allowed = PARAMS[action]
  for (const [key, value] of Object.entries(params)) {
    const rule = allowed[key]
    if (!rule) {
      const names = Object.keys(allowed)
      return `"${action}" takes ${names.length ? `only ${names.join(', ')}` : 'no parameters'} (not ${key})`
    }
    if (!rule[1].test(value)) return `${key} must be ${rule[2]}`
  }
  for (const [key, rule] of Object.entries(allowed)) {
    if (rule[0] && !Object.hasOwn(params, key)) return `"${action}" needs --param ${key}=…`
  }
  return null
}

/** The end of a standing policy (`until`: a date means the end of that UTC day), epoch ms. */
export function standingUntil(until: string): number {
  return /^\d{4}-\d{2}-\d{2}$/.test(until)
    ? Date.parse(`${until}T23:59:59.999Z`)
    : Date.parse(until)
}

/** A duration `90d`, `12h`, `30m`, `45s` in ms. */
export function durationMs(value: string): number {
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[value.slice(-1)] ?? Number.NaN
  return Number(value.slice(0, -1)) * unit
}

/** The governed parameters of a rotation. */
export function rotationParams(options: {
  rotate?: boolean
  targetVersion?: number
}): Record<string, string> {
  if (options.targetVersion !== undefined) return { target_version: String(options.targetVersion) }
  return options.rotate === false ? { rotate: 'false' } : {}
}

/** The governed parameters of an unretire. */
export function unretireParams(options: { to?: number }): Record<string, string> {
  return options.to === undefined ? {} : { to: String(options.to) }
}

/** The governed parameters of a re-encryption. */
export function reencryptParams(to: string): Record<string, string> {
  return { to }
}
