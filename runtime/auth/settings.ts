import { existsSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import type { Config } from '../config/schema.ts'
import type { Diagnostic } from '../config/diagnostics.ts'
import type { TierOrder } from '../core/tiers.ts'

/** Which JWT claims hold what. */
export interface ClaimNames {
  subject: string
  groups: string
  clearance: string
  tenant: string
}

/** The claim names used when config names none. */
export const DEFAULT_CLAIMS: Readonly<ClaimNames> = Object.freeze({
  subject: 'sub',
  groups: 'groups',
  clearance: 'clearance',
  tenant: 'tenant',
})

/** A named caller for development, picked with `x-sovra-dev-principal` from loopback. */
export interface DevPrincipal {
  name: string
  groups: readonly string[]
  clearance: string
  tenant?: string | undefined
}

/** What an authenticator takes; every field has a default (no `jwks`: nobody proves anything, all are anonymous). */
export interface AuthOptions {
  /** An absolute JWKS file path or an http(s) URL. */
  jwks?: string | undefined
  issuer?: string | undefined
  audience?: string | undefined
  claims?: Partial<ClaimNames> | undefined
  /** Callers without a token are anonymous (lowest clearance). Default: true without `jwks`, false with it. */
  allowAnonymous?: boolean | undefined
  devPrincipals?: readonly DevPrincipal[] | undefined
}

/** `Project.auth`: the resolved `[auth]` table (or the deprecated `[gateway]` one), defaults filled. */
export interface AuthSettings extends AuthOptions {
  claims: ClaimNames
  allowAnonymous: boolean
  devPrincipals: DevPrincipal[]
  /** Groups whose members may use the control plane through the admin API with a token (`[auth] operators`). */
  operators: string[]
  /** Which table it came from: `auth`, `gateway` (deprecated alias) or `none`. */
  source: 'auth' | 'gateway' | 'none'
}

/** The group whose members may use the control plane with a token when `[auth] operators` is not set. */
export const DEFAULT_OPERATORS = Object.freeze(['sovra-operators'])

const isUrl = (s: string): boolean => /^https?:\/\//i.test(s)

/**
 * Resolves `[auth]` (or the deprecated `[gateway]` table, mapped onto it) into {@link AuthSettings}: defaults
 * filled, a relative `jwks` made absolute from the config's folder, dev principals checked against the tiers.
 * A dev principal while `jwks` is set is an error: the host would refuse its header anyway (fail closed, say so early).
 * @param top the validated config with the environment applied
 * @param ctx the config's folder and file, and the project's tiers
 */
export function resolveAuth(
  top: Pick<Config, 'auth' | 'gateway'>,
  ctx: { dir: string; file: string; tiers: TierOrder },
): { auth: AuthSettings; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = []
  const error = (path: string, message: string): void =>
    void diagnostics.push({ severity: 'error', file: ctx.file, path, message })
  const warn = (path: string, message: string): void =>
    void diagnostics.push({ severity: 'warning', file: ctx.file, path, message })
  const lowest = ctx.tiers.names[0] as string
  const { auth, gateway } = top
  let source: AuthSettings['source'] = 'none'
  let table: NonNullable<Config['auth']> = {}
  let at = 'auth'
  if (auth !== undefined) {
    source = 'auth'
    table = auth
    if (gateway !== undefined)
      warn(
        'gateway',
        '[gateway] is a deprecated alias of [auth] and is ignored because [auth] is present; move jwks, issuer, audience and the claim names into [auth]',
      )
  } else if (gateway !== undefined) {
    source = 'gateway'
    at = 'gateway'
    table = gateway
    warn(
      'gateway',
      '[gateway] (jwks, issuer, audience, groups_claim, clearance_claim) is deprecated; rename the table to [auth]: same keys, plus subject_claim, tenant_claim and [[auth.dev_principals]]',
    )
  }

  let jwks: string | undefined
  if (table.jwks !== undefined) {
    jwks = isUrl(table.jwks) || isAbsolute(table.jwks) ? table.jwks : resolve(ctx.dir, table.jwks)
    if (!isUrl(jwks) && !existsSync(jwks))
      error(
        `${at}.jwks`,
        `JWKS file not found: ${jwks} (from jwks = ${JSON.stringify(table.jwks)}); give a JSON Web Key Set file relative to the config's folder, or an https:// URL`,
      )
  }

  const devPrincipals: DevPrincipal[] = []
  const seen = new Set<string>()
  ;(table.dev_principals ?? []).forEach((p, i) => {
    const path = `auth.dev_principals[${i}]`
    if (seen.has(p.name))
      error(`${path}.name`, `duplicate dev principal ${JSON.stringify(p.name)}; each needs its own name`)
    seen.add(p.name)
    const clearance = p.clearance ?? lowest
    if (!ctx.tiers.names.includes(clearance))
      error(
        `${path}.clearance`,
        `unknown tier ${JSON.stringify(clearance)} for dev principal ${JSON.stringify(p.name)}; valid tiers are: ${ctx.tiers.names.join(', ')}`,
      )
    devPrincipals.push({
      name: p.name,
      groups: p.groups ?? [],
      clearance,
      ...(p.tenant === undefined ? {} : { tenant: p.tenant }),
    })
  })
  if (devPrincipals.length > 0 && jwks !== undefined) {
    error(
      'auth.dev_principals',
      `dev principals (${devPrincipals.map((p) => p.name).join(', ')}) cannot be used while [auth] jwks is set: callers then prove who they are with a JWT; keep the dev principals in a development config without jwks (e.g. --config wrangler.dev.toml), or remove them`,
    )
  }

  return {
    auth: {
      source,
      operators: (table as { operators?: string[] }).operators ?? [...DEFAULT_OPERATORS],
      ...(jwks === undefined ? {} : { jwks }),
      ...(table.issuer === undefined ? {} : { issuer: table.issuer }),
      ...(table.audience === undefined ? {} : { audience: table.audience }),
      claims: {
        subject: table.subject_claim ?? DEFAULT_CLAIMS.subject,
        groups: table.groups_claim ?? DEFAULT_CLAIMS.groups,
        clearance: table.clearance_claim ?? DEFAULT_CLAIMS.clearance,
        tenant: table.tenant_claim ?? DEFAULT_CLAIMS.tenant,
      },
      allowAnonymous: table.allow_anonymous ?? jwks === undefined,
      devPrincipals,
    },
    diagnostics,
  }
}
