/**
 * Abilities an access token can carry.
 */
export const ABILITIES = [
  'entries:read',
  'entries:write',
  'rotation:read',
  'rotation:admin',
  'governance:admin',
  'approvals:sign',
] as const

/** One of {@link ABILITIES}. */
export type Ability = (typeof ABILITIES)[number]
