import type { JWTPayload } from 'jose'
import type { Principal } from '../core/context.ts'
import { SovraError } from '../core/errors.ts'
import type { ClaimNames, DevPrincipal } from './settings.ts'

/** The subject of a caller who proved nothing. */
export const ANONYMOUS_SUBJECT = 'anonymous'

/**
 * The principal of a caller without credentials: subject `anonymous`, no groups, the lowest clearance, and
 * `anonymous: true` so a function can tell it from a verified caller. Frozen: one object serves every request.
 * @param tiers the tier names, lowest first
 */
export function anonymousPrincipal(tiers: readonly string[]): Principal {
  return Object.freeze({
    subject: ANONYMOUS_SUBJECT,
    groups: Object.freeze([]) as readonly string[],
    clearance: tiers[0] as string,
    anonymous: true,
  })
}

/**
 * Reads a groups claim: an array, or a space- or comma-separated string (OAuth's `scope` style); else none.
 * @param value the claim's value
 */
export function claimList(value: unknown): string[] {
  return Array.isArray(value)
    ? value.map(String)
    : typeof value === 'string'
      ? value.split(/[ ,]+/).filter(Boolean)
      : []
}

/**
 * Makes the principal of a verified token: subject, groups, clearance (absent or not a known tier: the lowest, so
 * an unknown claim never raises anyone's clearance) and tenant. A token without a subject is refused.
 * @param claims the verified payload
 * @param names which claims hold what
 * @param tiers the tier names, lowest first
 */
export function principalFromClaims(claims: JWTPayload, names: ClaimNames, tiers: readonly string[]): Principal {
  const subject = claims[names.subject]
  if (typeof subject !== 'string' || subject === '') {
    throw new SovraError(
      'ERR_UNAUTHENTICATED',
      `token refused: no subject: expected a non-empty string in claim ${JSON.stringify(names.subject)} ([auth] subject_claim), received ${JSON.stringify(subject ?? null)}`,
      { details: { reason: 'claims' } },
    )
  }
  const clearance = claims[names.clearance]
  const tenant = claims[names.tenant]
  return {
    subject,
    groups: claimList(claims[names.groups]),
    clearance: typeof clearance === 'string' && tiers.includes(clearance) ? clearance : (tiers[0] as string),
    ...(typeof tenant === 'string' && tenant !== '' ? { tenant } : {}),
  }
}

/**
 * Makes the principal of a dev principal entry (subject = its name).
 * @param entry the `[[auth.dev_principals]]` entry, resolved
 */
export function principalFromDev(entry: DevPrincipal): Principal {
  return {
    subject: entry.name,
    groups: [...entry.groups],
    clearance: entry.clearance,
    ...(entry.tenant === undefined ? {} : { tenant: entry.tenant }),
  }
}
