import { SovraError } from '../../core/errors.ts'
import type { Project } from '../../config/resolve.ts'
import { selectVersion } from '../../../triggers/http/version-select.ts'
import { TEXT_TYPES } from '../openwhisk/params.ts'
import { callerAttributes, headerOf, readHead, type Executor } from '../app/executor.ts'

/** One function's routing on the cluster, as `sovra deploy` records it in the package (`sovra-routing`). */
export interface ClusterRouting {
  stable: string
  canary?: { version: string; weight: number } | undefined
  pins?: Array<{ attribute: string; value: string; version: string }> | undefined
}

/** Where the cluster is and what the gateway last read of it. */
export interface ClusterView {
  project: Project
  apihost: string
  /** `uuid:key` of the namespace. */
  auth: string
  namespace: string
  /** Function -> current stable action. */
  current(): Record<string, string>
  routing(): Record<string, ClusterRouting>
  /** Records what an action did (status, latency): the canary controller's evidence. */
  record(action: string, status: number, ms: number): void
}

/** The action that answered each response the executor returned (for the gateway's log line). */
export const ANSWERED_BY = new WeakMap<Response, string>()

/**
 * The gateway's executor: picks the function's action (stable, canary by request id, pins on the caller's
 * attributes), then a blocking invoke with the raw-http web-action parameters and the verified principal
 * (`__sovra_principal`); the action's `{statusCode, headers, body}` becomes the response, with `x-sovra-version`
 * naming the action that answered. The caller's token never reaches the action.
 * @param cluster the cluster and the routing last read from it
 */
export function openWhiskExecutor(cluster: ClusterView): Executor {
  const base = `${cluster.apihost.replace(/\/+$/, '')}/api/v1/namespaces/${encodeURIComponent(cluster.namespace)}`
  const authHeader = `Basic ${Buffer.from(cluster.auth).toString('base64')}`
  const pkg = cluster.project.name
  return {
    async fetch(call) {
      const started = performance.now()
      const fnName = call.fn.name
      const split = cluster.routing()[fnName]
      const head = await readHead(call)
      // A canary on the cluster: the same request id always reaches the same action (x-request-id, else random).
      const requestId = headerOf(head, 'x-request-id') ?? call.invocationId
      const action =
        split === undefined
          ? cluster.current()[fnName]
          : selectVersion(
              { stable: split.stable, canary: split.canary, pins: split.pins ?? [] },
              { requestId, ...(split.pins?.length ? { attributes: callerAttributes(head, call.caller) } : {}) },
            ).version
      if (action === undefined)
        throw new SovraError(
          'ERR_NOT_FOUND',
          `function "${fnName}" is not deployed to ${cluster.apihost} (no current version in package ${pkg})`,
        )
      try {
        const headers: Record<string, string> = {}
        for (let i = 0; i + 1 < head.headers.length; i += 2) {
          const k = (head.headers[i] as string).toLowerCase()
          if (k === 'authorization') continue
          headers[k] =
            headers[k] === undefined ? (head.headers[i + 1] as string) : `${headers[k]}, ${head.headers[i + 1]}`
        }
        const url = new URL(call.url)
        const params = {
          __ow_method: head.method.toLowerCase(),
          __ow_path: url.pathname,
          __ow_query: url.search.slice(1),
          __ow_headers: headers,
          ...(head.body !== null && head.body.byteLength > 0
            ? { __ow_body: Buffer.from(head.body).toString('base64') }
            : {}),
          __sovra_principal: call.caller.principal,
        }
        const r = await fetch(
          `${base}/actions/${encodeURIComponent(pkg)}/${encodeURIComponent(action)}?blocking=true&result=true`,
          {
            method: 'POST',
            headers: { authorization: authHeader, 'content-type': 'application/json' },
            body: JSON.stringify(params),
          },
        )
        if (r.status === 202) {
          const { activationId } = (await r.json()) as { activationId?: string }
          throw new SovraError(
            'ERR_TIMEOUT',
            `function "${fnName}" did not answer within OpenWhisk's blocking window; activation ${activationId ?? '?'} still runs`,
          )
        }
        const result = (await r.json()) as Record<string, unknown>
        const web = (result['error'] ?? result) as
          { statusCode?: number; headers?: Record<string, string | string[]>; body?: string } | string
        if (typeof web !== 'object' || web.statusCode === undefined) {
          throw new SovraError(
            'ERR_UPSTREAM',
            `OpenWhisk answered ${r.status} for ${action}: ${JSON.stringify(result).slice(0, 200)}`,
          )
        }
        const out = new Headers()
        for (const [k, v] of Object.entries(web.headers ?? {}))
          for (const one of Array.isArray(v) ? v : [v]) out.append(k, String(one))
        const payload =
          web.body === undefined
            ? null
            : TEXT_TYPES.test(out.get('content-type') ?? '')
              ? web.body
              : Buffer.from(web.body, 'base64')
        // The action that answered (`<fn>-<8 hex>`, one per deployed version), as the embedded host names its version.
        out.set('x-sovra-version', action)
        cluster.record(action, web.statusCode, performance.now() - started)
        const response = new Response(payload, { status: web.statusCode, headers: out })
        ANSWERED_BY.set(response, action)
        return response
      } catch (e) {
        // A platform failure of the chosen action counts against it (a refused caller never reaches here).
        const status = e instanceof SovraError ? e.status : 500
        if (status >= 500) cluster.record(action, status, performance.now() - started)
        throw e
      }
    },
    health() {
      return { ready: true, functions: { ...cluster.current() } }
    },
    describe() {
      const current = cluster.current()
      const routing = cluster.routing()
      return cluster.project.functions.map((f) => ({
        name: f.name,
        routes: f.routes,
        tier: f.tier,
        action: current[f.name] ?? null,
        // The actions requests are split across (stable, canary with its weight, pins), as the gateway last read them.
        versions: routing[f.name] ?? null,
      }))
    },
  }
}
