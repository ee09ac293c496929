import type { FunctionConfig } from '../config/schema.ts'
import type { SecretStore } from '../config/secrets.ts'
import type { EnvSpec } from '../isolate/codec.ts'
import type { BindingServer, CallContext, HostServices } from './define.ts'
import { bindingKind } from './registry.ts'

/**
 * Builds what an isolate needs to construct a function's `env`: its `[vars]`, the secrets it may see and its
 * bindings (plain data; each kind's `client` builds the object inside the isolate), and whether a binding needs
 * to know which invocation made each call (a kind with `perCaller`).
 * @param fn the resolved function
 * @param secrets the project's secrets; only the names in `fn.secrets` are handed over
 */
export function buildEnvSpec(fn: FunctionConfig, secrets: SecretStore): EnvSpec {
  const spec: EnvSpec = { vars: fn.vars, secrets: secrets.pick(fn.secrets), bindings: fn.bindings }
  if (fn.bindings.some((b) => bindingKind(b.type).perCaller === true)) spec.perCaller = true
  return spec
}

/** Runs one binding call of a function on the host: by `env` name, method and arguments. */
export type BindingHost = (
  binding: string,
  method: string,
  args: unknown[],
  call?: CallContext,
) => ReturnType<BindingServer>

/**
 * The host side of a function's bindings: each binding's kind serves it on the host's services. Built when the
 * function loads, so a binding whose service is missing fails the load, naming the binding.
 * @param fn the function
 * @param services the host's services (bucket adapters, inference router, ...)
 */
export function serveBindings(fn: FunctionConfig, services: HostServices): BindingHost | undefined {
  if (fn.bindings.length === 0) return undefined
  const caller = { function: fn.name, tier: fn.tier, timeoutMs: fn.limits.timeout_ms }
  const servers = new Map(fn.bindings.map((b) => [b.name, bindingKind(b.type).serve(b, services, caller)]))
  return (binding, method, args, call) => {
    const server = servers.get(binding)
    if (server === undefined) {
      return Promise.reject(
        new Error(
          `function "${fn.name}" has no binding ${JSON.stringify(binding)}; it binds: ${[...servers.keys()].join(', ')}`,
        ),
      )
    }
    return server(method, args, call ?? {})
  }
}
