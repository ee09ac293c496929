import type { JWTPayload } from 'jose'
import type { Principal } from '../core/context.ts'
import { SovraError } from '../core/errors.ts'
import { createJwtVerifier, type RefusalReason } from './jwt.ts'
import { isLoopback } from './loopback.ts'
import { anonymousPrincipal, principalFromClaims, principalFromDev } from './principal.ts'
import { DEFAULT_CLAIMS, type AuthOptions, type DevPrincipal } from './settings.ts'

/** The header a loopback caller names a `[[auth.dev_principals]]` entry with (only without `[auth] jwks`). */
export const DEV_PRINCIPAL_HEADER = 'x-sovra-dev-principal'

/** What authentication reads of a request: its headers and the socket's remote address. */
export interface Caller {
  /** A request header by lower-case name. */
  header(name: string): string | undefined
  /** The peer's address (`socket.remoteAddress`); undefined for in-memory requests, which count as off loopback. */
  remoteAddress: string | undefined
}

/** Who the caller is, and the verified claims when a token proved it (for pins on `claim:<name>`). */
export interface Authenticated {
  principal: Principal
  claims?: JWTPayload
  /** True when a bearer token was verified (hosts then keep the token from the function). */
  token?: boolean
}

/** Establishes the principal of one request, or throws ERR_UNAUTHENTICATED (401) saying why. */
export type Authenticate = (caller: Caller) => Promise<Authenticated>

const refuse = (reason: RefusalReason, message: string): SovraError =>
  new SovraError('ERR_UNAUTHENTICATED', message, { details: { reason } })

/**
 * Creates the one authentication step every host runs before a function, from `Project.auth`:
 * - `x-sovra-dev-principal: <name>` picks a dev principal, only from loopback and only without `jwks`;
 * - with `jwks`, `Authorization: Bearer <JWT>` is verified (signature, expiry, issuer, audience) and its claims
 *   become the principal; without a token the caller is refused unless `allowAnonymous`;
 * - without `jwks`, nobody can prove anything: every other caller is anonymous (an Authorization header is left to
 *   the function, which may check its own scheme).
 * The anonymous principal is `{ subject: 'anonymous', groups: [], clearance: <lowest tier>, anonymous: true }`.
 * @param options the resolved `[auth]` settings (any field may be left out)
 * @param tiers the project's tier names, lowest first
 * @example
 * const authenticate = createAuthenticator(project.auth, project.tiers.names)
 * const { principal } = await authenticate({ header: (n) => req.headers.get(n) ?? undefined, remoteAddress: '127.0.0.1' })
 */
export function createAuthenticator(options: AuthOptions, tiers: readonly string[]): Authenticate {
  const anonymous: Authenticated = Object.freeze({ principal: anonymousPrincipal(tiers) })
  const claims = { ...DEFAULT_CLAIMS, ...options.claims }
  const verify =
    options.jwks === undefined
      ? undefined
      : createJwtVerifier({ jwks: options.jwks, issuer: options.issuer, audience: options.audience })
  const allowAnonymous = options.allowAnonymous ?? verify === undefined
  const dev = new Map<string, DevPrincipal>((options.devPrincipals ?? []).map((p) => [p.name, p]))

  function devPrincipal(name: string, remote: string | undefined): Authenticated {
    if (verify !== undefined) {
      throw refuse(
        'dev_principal',
        `${DEV_PRINCIPAL_HEADER} is refused: [auth] jwks is set, so callers prove who they are with Authorization: Bearer <JWT>; dev principals work only in a config without jwks`,
      )
    }
    if (!isLoopback(remote)) {
      throw refuse(
        'dev_principal',
        `${DEV_PRINCIPAL_HEADER} is accepted only from loopback (127.0.0.0/8, ::1); this request came from ${remote ?? 'an unknown address (in-memory request)'}`,
      )
    }
    const entry = dev.get(name)
    if (entry === undefined) {
      throw refuse(
        'dev_principal',
        `unknown dev principal ${JSON.stringify(name)}; ${dev.size === 0 ? 'the config declares none: add [[auth.dev_principals]] entries (name, groups, clearance, tenant)' : `valid names are: ${[...dev.keys()].join(', ')}`}`,
      )
    }
    return { principal: principalFromDev(entry) }
  }

  return async (caller) => {
    const devName = caller.header(DEV_PRINCIPAL_HEADER)
    if (devName !== undefined) return devPrincipal(devName, caller.remoteAddress)
    if (verify === undefined) {
      if (allowAnonymous) return anonymous
      throw refuse(
        'missing',
        `anonymous callers are refused ([auth] allow_anonymous = false) and no jwks is set: send ${DEV_PRINCIPAL_HEADER}: <name> from loopback, or set [auth] jwks`,
      )
    }
    const header = caller.header('authorization')
    if (header === undefined) {
      if (allowAnonymous) return anonymous
      throw refuse('missing', 'expected Authorization: Bearer <JWT>, received no Authorization header')
    }
    const m = /^Bearer +(\S+) *$/i.exec(header)
    if (m === null)
      throw refuse(
        'missing',
        `expected Authorization: Bearer <JWT>, received ${/^\S+ /.test(header) ? `a ${header.split(' ')[0]} credential` : 'a value without a scheme'}`,
      )
    const payload = await verify(m[1] as string)
    return { principal: principalFromClaims(payload, claims, tiers), claims: payload, token: true }
  }
}
