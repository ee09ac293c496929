import type { ExecutionContext, Invocation, TriggerKind } from '../../core/context.ts'
import { errorToBody, SovraError } from '../../core/errors.ts'
import type { ObjectEvent } from '../../core/handlers.ts'
import { dispatchEvent, dispatchFetch, WaitUntil, type AnyModule, type EventInput } from '../../core/dispatch.ts'
import { isWebParams, requestFromParams, resultFromResponse } from './params.ts'

/** What the build bakes into an action: the function's identity and limits. */
export interface ActionOptions {
  name: string
  /** The bundle's short sha256. */
  version: string
  limits: { timeout_ms: number; max_body_bytes: number }
  /**
   * Builds `env` from the deploy-time parameter `__sovra` (vars, secrets, bucket and AI endpoints); composed at
   * build time, where infra adapters may be bundled. Default: vars and secrets only.
   */
  env?: (config: SovraParams) => Record<string, unknown>
}

/** The default parameter a deploy binds to every action (final: callers cannot override it). */
export interface SovraParams {
  vars?: Record<string, unknown>
  secrets?: Record<string, string>
  [key: string]: unknown
}

/** An action's entry point, as OpenWhisk calls it. */
export type ActionMain = (params: Record<string, unknown>) => Promise<Record<string, unknown>>

// The platform kills the container at the limit (docs/platform-notes.md: the proxy never enforces it); answer just before.
const DEADLINE_MARGIN_MS = 50

function deadlineOf(timeoutMs: number): number {
  const limit = Date.now() + timeoutMs
  const ow = Number(process.env['__OW_DEADLINE'])
  return Number.isFinite(ow) && ow > 0 ? Math.min(ow, limit) : limit
}

function invocationId(): string {
  return process.env['__OW_ACTIVATION_ID'] ?? crypto.randomUUID()
}

/**
 * Creates the `main` of an OpenWhisk action for a function module: a raw-http web action call runs `fetch`, a cron
 * trigger's params (`__sovra_trigger: "cron"`) run `scheduled`, an object event (`__sovra_trigger: "object"`) runs
 * `object`. The deadline comes from `__OW_DEADLINE` and drives `ctx.signal`; `waitUntil` promises are awaited before
 * `main` returns (an action has no time after its result). Errors become `{ error: {...} }` results carrying the same
 * status and body the embedded host answers with.
 * @param mod the function's default export
 * @param options name, version, limits and the env factory
 * @example
 * exports.main = createActionMain(fn, { name: 'echo', version: 'a1b2c3', limits: { timeout_ms: 30000, max_body_bytes: 1048576 } })
 */
export function createActionMain(mod: AnyModule, options: ActionOptions): ActionMain {
  let env: Record<string, unknown> | undefined
  const envOf = (params: Record<string, unknown>): Record<string, unknown> => {
    // One env per container: bindings (S3 clients) are built once, as isolates build theirs once.
    if (env === undefined) {
      const config = (params['__sovra'] ?? {}) as SovraParams
      env = options.env?.(config) ?? { ...config.vars, ...config.secrets }
    }
    return env
  }

  return async (params) => {
    const deadline = deadlineOf(options.limits.timeout_ms)
    const trigger: TriggerKind = isWebParams(params)
      ? 'http'
      : params['__sovra_trigger'] === 'cron'
        ? 'cron'
        : params['__sovra_trigger'] === 'object'
          ? 'object'
          : 'invoke'
    const invocation: Invocation = { id: invocationId(), function: options.name, version: options.version, trigger }
    const controller = new AbortController()
    const waits = new WaitUntil()
    const ctx: ExecutionContext = {
      waitUntil: (p) => waits.add(p),
      signal: controller.signal,
      deadline,
      invocation,
      // Only the gateway's blocking invoke carries it: raw-http web calls cannot set top-level params.
      principal: principalOf(params['__sovra_principal']),
    }
    // waitUntil rejections never fail the invocation: they are logged, as the embedded host logs them.
    const settle = async (): Promise<void> => {
      for (const e of await waits.settle()) console.error(`[sovra] waitUntil rejected in ${options.name}:`, e)
    }
    let timer: ReturnType<typeof setTimeout> | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => {
          const e = new SovraError(
            'ERR_TIMEOUT',
            `function "${options.name}" did not finish within limits.timeout_ms (${options.limits.timeout_ms} ms)`,
          )
          controller.abort(e)
          reject(e)
        },
        Math.max(0, deadline - Date.now() - DEADLINE_MARGIN_MS),
      )
    })
    try {
      const run = async (): Promise<Record<string, unknown>> => {
        if (trigger === 'http') {
          const request = requestFromParams(
            params as unknown as Parameters<typeof requestFromParams>[0],
            options.limits.max_body_bytes,
            options.name,
          )
          const response = await dispatchFetch(mod, options.name, request, envOf(params), ctx)
          const result = await resultFromResponse(response, options.limits.max_body_bytes)
          await settle()
          result.headers['x-sovra-invocation-id'] = invocation.id
          return result as unknown as Record<string, unknown>
        }
        if (trigger === 'cron' || trigger === 'object') {
          const input: EventInput =
            trigger === 'cron'
              ? {
                  handler: 'scheduled',
                  cron: String(params['cron'] ?? ''),
                  scheduledTime: Number(params['scheduledTime'] ?? Date.now()),
                }
              : { handler: 'object', event: params['event'] as ObjectEvent }
          const outcome = await dispatchEvent(mod, options.name, input, envOf(params), ctx, waits)
          await settle()
          if (!outcome.ok) {
            const e = outcome.error
            throw Object.assign(e instanceof Error ? e : new Error(String(e)), { noRetry: outcome.noRetry })
          }
          return { ok: true, invocation_id: invocation.id }
        }
        throw new SovraError(
          'ERR_BAD_REQUEST',
          `action "${options.name}" received params it cannot route: expected a web action call (__ow_method) or __sovra_trigger "cron" | "object", received keys ${
            Object.keys(params)
              .filter((k) => k !== '__sovra')
              .join(', ') || '(none)'
          }`,
        )
      }
      return await Promise.race([run(), timedOut])
    } catch (error) {
      if (error instanceof Error && !(error instanceof SovraError) && error.name !== 'SovraError')
        console.error(`[sovra] ${options.name} ${invocation.id}:`, error)
      const { status, body } = errorToBody(error, invocation.id)
      if (trigger === 'http') {
        const headers: Record<string, string> = {
          'content-type': 'application/json; charset=utf-8',
          'x-sovra-invocation-id': invocation.id,
        }
        const retry = body.error['retry_after']
        if (typeof retry === 'number') headers['retry-after'] = String(retry)
        return { error: { statusCode: status, headers, body: JSON.stringify(body) } }
      }
      return { error: { ...body.error, status, no_retry: (error as { noRetry?: boolean }).noRetry === true } }
    } finally {
      clearTimeout(timer)
    }
  }
}

function principalOf(value: unknown): ExecutionContext['principal'] {
  if (typeof value !== 'object' || value === null) return undefined
  const p = value as { subject?: unknown; groups?: unknown; clearance?: unknown; tenant?: unknown; anonymous?: unknown }
  if (typeof p.subject !== 'string' || typeof p.clearance !== 'string') return undefined
  return {
    subject: p.subject,
    groups: Array.isArray(p.groups) ? p.groups.map(String) : [],
    clearance: p.clearance,
    ...(typeof p.tenant === 'string' ? { tenant: p.tenant } : {}),
    ...(p.anonymous === true ? { anonymous: true } : {}),
  }
}
