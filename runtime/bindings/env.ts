import type { FunctionConfig } from '../config/schema.ts'
import type { SecretStore } from '../config/secrets.ts'
import type { EnvSpec } from '../isolate/codec.ts'

/**
 * Builds what an isolate needs to construct a function's `env`: its `[vars]` and the secrets it may see.
 * Bindings over ports (buckets, AI, indexes) join this spec as their capabilities land.
 * @param fn the resolved function
 * @param secrets the project's secrets; only the names in `fn.secrets` are handed over
 */
export function buildEnvSpec(fn: FunctionConfig, secrets: SecretStore): EnvSpec {
  const bindings: NonNullable<EnvSpec['bindings']> = fn.buckets.map((b) => ({ name: b.binding, type: 'bucket' as const }))
  if (fn.ai !== undefined) bindings.push({ name: fn.ai, type: 'ai' })
  return { vars: fn.vars, secrets: secrets.pick(fn.secrets), bindings }
}
