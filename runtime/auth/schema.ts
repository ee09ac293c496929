import * as v from 'valibot'

/** One `[[auth.dev_principals]]` entry: a named caller a developer can pick with `x-sovra-dev-principal`. */
export const DevPrincipalSchema = v.object({
  /** What `x-sovra-dev-principal: <name>` selects; also the principal's subject. */
  name: v.pipe(v.string(), v.minLength(1)),
  groups: v.optional(v.array(v.string())),
  /** A tier from `[tiers] order`; default: the lowest tier. */
  clearance: v.optional(v.string()),
  tenant: v.optional(v.string()),
})
/** A dev principal entry as written (resolved into `DevPrincipal` by `resolveAuth`). */
export type DevPrincipalEntry = v.InferOutput<typeof DevPrincipalSchema>

/**
 * `[auth]`: how callers become principals on every host. JWTs are checked against `jwks` (a JSON Web Key Set file,
 * relative to the config's folder, or an http(s) URL) with `issuer` and `audience`; the claims named here (defaults
 * `sub`, `groups`, `clearance`, `tenant`) become `ctx.principal`. Without `jwks`, callers are anonymous unless a
 * loopback caller picks one of `dev_principals` with `x-sovra-dev-principal`.
 */
export const AuthSchema = v.object({
  jwks: v.optional(v.pipe(v.string(), v.minLength(1))),
  issuer: v.optional(v.string()),
  audience: v.optional(v.string()),
  /** Claim holding the subject (default `sub`). */
  subject_claim: v.optional(v.pipe(v.string(), v.minLength(1))),
  /** Claim holding the groups: an array, or a space- or comma-separated string (default `groups`). */
  groups_claim: v.optional(v.pipe(v.string(), v.minLength(1))),
  /** Claim holding the clearance tier (default `clearance`; absent or unknown: the lowest tier). */
  clearance_claim: v.optional(v.pipe(v.string(), v.minLength(1))),
  /** Claim holding the tenant (default `tenant`). */
  tenant_claim: v.optional(v.pipe(v.string(), v.minLength(1))),
  /** Let callers without a token in as anonymous (lowest clearance). Default: true without `jwks`, false with it. */
  allow_anonymous: v.optional(v.boolean()),
  dev_principals: v.optional(v.array(DevPrincipalSchema)),
  /**
   * Groups whose members may use the control plane through the admin API with a token (deploy, rollout, approve,
   * audit, keys). Default `["sovra-operators"]`. Without `jwks` only loopback callers may, as the OS user.
   */
  operators: v.optional(v.array(v.pipe(v.string(), v.minLength(1)))),
})
/** The `[auth]` table as written (resolved into `Project.auth` by `resolveAuth`). */
export type Auth = v.InferOutput<typeof AuthSchema>
