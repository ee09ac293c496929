import { createHash, timingSafeEqual } from 'node:crypto'
import { SovraError } from '../core/errors.ts'

/** What a bearer check says in its refusals: the secret's name, and how to turn the endpoint on. */
export interface BearerCheck {
  /** The secret the caller must present, e.g. `MINIO_WEBHOOK_TOKEN`. */
  secret: string
  /** The refusal when no token is configured (the endpoint is off). */
  disabled: string
}

/** The MinIO webhook's token (embedded host `POST /_sovra/events/minio` and the OpenWhisk events bridge). */
export const MINIO_WEBHOOK_BEARER: BearerCheck = Object.freeze({
  secret: 'MINIO_WEBHOOK_TOKEN',
  disabled:
    "the MinIO webhook is disabled: set the secret MINIO_WEBHOOK_TOKEN (e.g. SOVRA_SECRET_MINIO_WEBHOOK_TOKEN; on OpenWhisk, deploy again) and MinIO's auth_token to the same value",
})

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest()

/**
 * Checks `Authorization: Bearer <token>` (the scheme in any case) against a configured shared secret in constant time: both sides are hashed
 * with sha256 first, so neither the comparison time nor a length check tells a caller how close it was. No token
 * configured refuses everything. Refusals are ERR_UNAUTHENTICATED (401) on every host.
 * @param header the Authorization header as received
 * @param token the expected token (a secret); undefined or empty: the endpoint is disabled
 * @param check the secret's name and the message when disabled
 * @example
 * checkBearer(req.headers.authorization, secrets.MINIO_WEBHOOK_TOKEN, { secret: 'MINIO_WEBHOOK_TOKEN', disabled: 'the MinIO webhook is disabled: set the secret MINIO_WEBHOOK_TOKEN' })
 */
export function checkBearer(header: string | undefined, token: string | undefined, check: BearerCheck): void {
  if (token === undefined || token === '')
    throw new SovraError('ERR_UNAUTHENTICATED', check.disabled, { details: { reason: 'disabled' } })
  if (header === undefined)
    throw new SovraError('ERR_UNAUTHENTICATED', `missing Authorization: Bearer <${check.secret}>`, {
      details: { reason: 'missing' },
    })
  // The scheme is case-insensitive and followed by one or more spaces (RFC 7235 section 2.1; RFC 6750 section 2.1).
  const given = /^bearer +(\S.*)$/i.exec(header)?.[1]
  if (given === undefined)
    throw new SovraError(
      'ERR_UNAUTHENTICATED',
      `expected Authorization: Bearer <${check.secret}>, received another scheme`,
      { details: { reason: 'missing' } },
    )
  if (!timingSafeEqual(digest(given), digest(token)))
    throw new SovraError('ERR_UNAUTHENTICATED', `wrong token: Authorization: Bearer <${check.secret}> does not match`, {
      details: { reason: 'token' },
    })
}
