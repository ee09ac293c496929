import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Logger } from '../../runtime/core/observe.ts'
import type { AddressInfo } from 'node:net'
import type { JWTPayload } from 'jose'
import { Counter, Histogram, Registry } from 'prom-client'

import { errorToBody, SovraError } from '../../runtime/core/errors.ts'
import type { Principal } from '../../runtime/core/context.ts'
import { createAuthenticator } from '../../runtime/auth/authenticate.ts'
import { checkBearer } from '../../runtime/auth/bearer.ts'
import { callerFromIncoming } from '../../runtime/auth/middleware.ts'
import type { AuthOptions } from '../../runtime/auth/settings.ts'
import type { AiService } from '../../runtime/core/ports.ts'
import { serveAiCall } from '../../runtime/bindings/ai/serve.ts'
import type { Project } from '../../runtime/config/resolve.ts'
import { RouteTable } from '../../triggers/http/route-table.ts'
import { readLimited } from '../../runtime/hosts/local/request.ts'
import { TEXT_TYPES } from '../../runtime/hosts/openwhisk/params.ts'
import { selectVersion } from '../../triggers/http/version-select.ts'
import { OutcomeWindows } from '../../triggers/http/outcome-window.ts'
import { judgeCanary, type RolloutThresholds, type WindowStats } from '../deploy/canary-check.ts'

/** What the gateway needs. */
export interface GatewayOptions {
  project: Project
  apihost: string
  /** `uuid:key` of the namespace the project is deployed in. */
  auth: string
  namespace?: string | undefined
  /**
   * How callers prove who they are (`Project.auth`: JWKS file or URL, issuer, audience, claim names, dev principals),
   * checked by the same authenticator as the embedded host's. Without `jwks` every caller is anonymous (lowest
   * clearance): only for loopback tests and trusted networks.
   */
  jwt?: AuthOptions | undefined
  log: Logger
  port?: number
  hostname?: string
  /** How often the current versions are re-read from the package (ms). */
  refreshMs?: number
  /**
   * Automatic rollback of cluster canaries: every `intervalMs` the gateway compares each canary action with stable on
   * what it saw itself (status >= 500 as errors, latency) and rolls it back through `rollback` when the thresholds
   * say so.
   */
  canaryControl?: {
    thresholds: (fn: string) => RolloutThresholds
    rollback: (fn: string, reason: string) => Promise<void>
    intervalMs?: number
  } | undefined
  /** The router behind actions' `env.AI` (`POST /_sovra/ai/<op>`), and the bearer token actions send. */
  ai?: { service: AiService; token: string } | undefined
}

/** A running gateway. */
export interface Gateway {
  url: string
  /** Function -> current action, as last read from the cluster. */
  current(): Record<string, string>
  /** One pass of the canary controller (also run on its timer). */
  checkCanaries(): Promise<void>
  refresh(): Promise<void>
  close(): Promise<void>
}

/**
 * The gateway in front of a cluster (`sovra gateway`): routes from the config (as the embedded host routes),
 * callers authenticated by runtime/auth (JWT against a JWKS file or URL, as the embedded host does), then a blocking invoke of the function's current version
 * (recorded in the package by `sovra deploy`) with the raw-http parameters and the verified principal. Admin API
 * (`/_sovra/health`, `/_sovra/metrics`, `/_sovra/functions`), Prometheus metrics and one log line per request.
 * @param options project, cluster, auth settings, logger, address
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { project, log } = options
  const ns = options.namespace ?? '_'
  const base = `${options.apihost.replace(/\/+$/, '')}/api/v1/namespaces/${encodeURIComponent(ns)}`
  const authHeader = `Basic ${Buffer.from(options.auth).toString('base64')}`
  const routes = new RouteTable(project.functions.flatMap((f) => f.routes.map((pattern) => ({ pattern, target: f.name }))), (t) => `function ${JSON.stringify(t)}`)
  const byName = new Map(project.functions.map((f) => [f.name, f]))
  let current: Record<string, string> = {}
  let routing: Record<string, { stable: string; canary?: { version: string; weight: number }; pins?: Array<{ attribute: string; value: string; version: string }> }> = {}
  const authenticate = createAuthenticator(options.jwt ?? {}, project.tiers.names)

  const registry = new Registry()
  const requests = new Counter({ name: 'sovra_gateway_requests_total', help: 'Requests by function and status', labelNames: ['function', 'status'] as const, registers: [registry] })
  const duration = new Histogram({ name: 'sovra_gateway_request_seconds', help: 'Gateway latency including the blocking invoke', labelNames: ['function'] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [registry] })

  // What each action did, as the gateway saw it: the canary controller's evidence.
  const outcomes = new OutcomeWindows()
  const record = (action: string, status: number, ms: number): void => outcomes.add(action, ms, status)
  const statsOf = (action: string, windowS: number): WindowStats => outcomes.summary(action, windowS)
  async function checkCanaries(): Promise<void> {
    const control = options.canaryControl
    if (control === undefined) return
    for (const [fn, r] of Object.entries(routing)) {
      if (r.canary === undefined) continue
      const t = control.thresholds(fn)
      const verdict = judgeCanary(t, statsOf(r.stable, t.windowS), statsOf(r.canary.version, t.windowS))
      if (verdict.verdict !== 'rollback') continue
      log.warn({ function: fn, canary: r.canary.version, reason: verdict.reason }, 'gateway: rolling the cluster canary back')
      await control.rollback(fn, verdict.reason)
      await refresh()
    }
  }

  async function refresh(): Promise<void> {
    const get = (): Promise<Response> => fetch(`${base}/packages/${encodeURIComponent(project.name)}`, { headers: { authorization: authHeader } })
    // A kept-alive connection the server closed meanwhile fails once with ECONNRESET; a read is safe to repeat.
    const res = await get().catch((e: unknown) => ((e as { cause?: { code?: string } }).cause?.code === 'ECONNRESET' ? get() : Promise.reject(e)))
    if (!res.ok) throw new SovraError('ERR_UPSTREAM', `reading package ${project.name} from ${options.apihost} failed: ${res.status} ${(await res.text()).slice(0, 200)}; deploy first (sovra deploy --target openwhisk)`)
    const pkg = (await res.json()) as { annotations?: Array<{ key: string; value: unknown }> }
    current = (pkg.annotations?.find((a) => a.key === 'sovra-current')?.value ?? {}) as Record<string, string>
    routing = (pkg.annotations?.find((a) => a.key === 'sovra-routing')?.value ?? {}) as typeof routing
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now()
    const url = new URL(req.url ?? '/', 'http://gateway')
    if (url.pathname === '/_sovra/health') return send(res, 200, { status: 'ok', functions: Object.keys(current).length })
    if (url.pathname === '/_sovra/metrics') {
      res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics())
      return
    }
    if (url.pathname === '/_sovra/functions') return send(res, 200, project.functions.map((f) => ({ name: f.name, routes: f.routes, tier: f.tier, action: current[f.name] ?? null })))
    if (url.pathname.startsWith('/_sovra/ai/')) return serveAi(req, res, url.pathname.slice('/_sovra/ai/'.length))
    const fnName = routes.match(url.pathname)?.target
    let status = 500
    let chosen: string | undefined
    try {
      if (fnName === undefined) throw new SovraError('ERR_NOT_FOUND', `no function serves ${url.pathname}`)
      const fn = byName.get(fnName) as NonNullable<ReturnType<typeof byName.get>>
      const who = await authenticate(callerFromIncoming(req))
      const principal = who.principal
      // A canary on the cluster: the same request id always reaches the same action (x-request-id, else random).
      const split = routing[fnName]
      const requestId = typeof req.headers['x-request-id'] === 'string' ? req.headers['x-request-id'] : undefined
      const action = chosen = split === undefined ? current[fnName] : selectVersion({ stable: split.stable, canary: split.canary, pins: split.pins ?? [] }, { requestId: requestId ?? crypto.randomUUID(), ...(split.pins?.length ? { attributes: callerAttributes(req, who.claims, principal) } : {}) }).version
      if (action === undefined) throw new SovraError('ERR_NOT_FOUND', `function "${fnName}" is not deployed to ${options.apihost} (no current version in package ${project.name})`)
      const body = req.method === 'GET' || req.method === 'HEAD' ? new Uint8Array(0) : await readLimited(req, fn.limits.max_body_bytes, fnName)
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && k !== 'authorization') headers[k] = Array.isArray(v) ? v.join(', ') : v
      const params = {
        __ow_method: (req.method ?? 'GET').toLowerCase(), __ow_path: url.pathname, __ow_query: url.search.slice(1), __ow_headers: headers,
        ...(body.byteLength > 0 ? { __ow_body: Buffer.from(body).toString('base64') } : {}),
        __sovra_principal: principal,
      }
      const r = await fetch(`${base}/actions/${encodeURIComponent(project.name)}/${encodeURIComponent(action)}?blocking=true&result=true`, {
        method: 'POST', headers: { authorization: authHeader, 'content-type': 'application/json' }, body: JSON.stringify(params),
      })
      if (r.status === 202) {
        const { activationId } = (await r.json()) as { activationId?: string }
        throw new SovraError('ERR_TIMEOUT', `function "${fnName}" did not answer within OpenWhisk's blocking window; activation ${activationId ?? '?'} still runs`)
      }
      const result = (await r.json()) as Record<string, unknown>
      const web = (result['error'] ?? result) as { statusCode?: number; headers?: Record<string, string | string[]>; body?: string } | string
      if (typeof web !== 'object' || web.statusCode === undefined) {
        throw new SovraError('ERR_UPSTREAM', `OpenWhisk answered ${r.status} for ${action}: ${JSON.stringify(result).slice(0, 200)}`)
      }
      status = web.statusCode
      const out: Record<string, string | string[]> = { ...web.headers }
      const type = String(out['content-type'] ?? '')
      const payload = web.body === undefined ? '' : TEXT_TYPES.test(type) ? web.body : Buffer.from(web.body, 'base64')
      res.writeHead(status, out).end(payload)
      record(action, status, performance.now() - started)
      log.info({ function: fnName, action, status, duration_ms: Math.round(performance.now() - started), subject: principal?.subject, method: req.method, path: url.pathname }, 'gateway request')
    } catch (e) {
      const mapped = errorToBody(e)
      status = mapped.status
      send(res, status, mapped.body)
      // A platform failure of the chosen action counts against it (not a refused caller: 4xx are not recorded).
      if (chosen !== undefined && status >= 500) record(chosen, status, performance.now() - started)
      log.warn({ function: fnName, status, code: mapped.body.error.code, error: mapped.body.error.message, duration_ms: Math.round(performance.now() - started), path: url.pathname }, 'gateway request failed')
    } finally {
      if (fnName !== undefined) {
        requests.inc({ function: fnName, status: String(status) })
        duration.observe({ function: fnName }, (performance.now() - started) / 1000)
      }
    }
  }

  async function serveAi(req: IncomingMessage, res: ServerResponse, op: string): Promise<void> {
    try {
      const ai = options.ai
      if (ai === undefined) throw new SovraError('ERR_NOT_FOUND', 'this gateway runs no AI router: add [[pools]] to the config and set the secret AI_ROUTER_TOKEN')
      if (req.method !== 'POST' || !['chat', 'embed', 'classify'].includes(op)) throw new SovraError('ERR_NOT_FOUND', `no route ${req.method} /_sovra/ai/${op}; valid: POST /_sovra/ai/chat | embed | classify`)
      checkBearer(req.headers.authorization, ai.token, { secret: 'AI_ROUTER_TOKEN', disabled: 'the AI router is disabled: set the secret AI_ROUTER_TOKEN' })
      const body = JSON.parse(new TextDecoder().decode(await readLimited(req, 16 * 1024 * 1024, 'ai'))) as { function?: string; request?: Record<string, unknown> }
      const fn = byName.get(String(body.function))
      if (fn === undefined || !fn.bindings.some((b) => b.type === 'ai')) throw new SovraError('ERR_TIER_DENIED', `function ${JSON.stringify(body.function)} does not bind AI in this config`)
      // The same host side as an isolate's env.AI call (runtime/bindings/ai): one place checks and routes it.
      const { value } = await serveAiCall(ai.service, { function: fn.name, tier: fn.tier, timeoutMs: fn.limits.timeout_ms }, op, [body.request])
      send(res, 200, value)
    } catch (e) {
      const mapped = errorToBody(e)
      send(res, mapped.status, mapped.body)
    }
  }

  // A gateway may start before the first deploy: it answers 404 per function until the package exists.
  await refresh().catch((e: unknown) => log.warn({ err: (e as Error).message }, 'gateway: no current versions yet'))
  const server: Server = createServer((req, res) => void handle(req, res).catch((e: unknown) => send(res, 500, errorToBody(e).body)))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 8788, options.hostname ?? '127.0.0.1', () => resolve())
  })
  const timer = setInterval(() => void refresh().catch((e: unknown) => log.error({ err: (e as Error).message }, 'gateway: reading current versions failed')), options.refreshMs ?? 10_000)
  timer.unref()
  const controlTimer = options.canaryControl === undefined ? undefined : setInterval(() => void checkCanaries().catch((e: unknown) => log.error({ err: (e as Error).message }, 'gateway: canary check failed')), options.canaryControl.intervalMs ?? 5000)
  controlTimer?.unref()
  return {
    url: `http://${options.hostname ?? '127.0.0.1'}:${(server.address() as AddressInfo).port}`,
    current: () => ({ ...current }),
    refresh,
    checkCanaries,
    close: () => {
      clearInterval(timer)
      if (controlTimer !== undefined) clearInterval(controlTimer)
      return new Promise((r) => server.close(() => r()))
    },
  }
}

/**
 * What pins match on: `tenant` (the principal's tenant, from `[auth] tenant_claim`, else the `x-sovra-tenant`
 * header), `header:<name>`, `claim:<name>`.
 * @param req the request
 * @param claims the verified token's claims
 * @param principal the caller
 */
function callerAttributes(req: IncomingMessage, claims: JWTPayload | undefined, principal: Principal): Record<string, string | undefined> {
  const attrs: Record<string, string | undefined> = {}
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') attrs[`header:${k}`] = v
  for (const [k, v] of Object.entries(claims ?? {})) if (typeof v === 'string') attrs[`claim:${k}`] = v
  attrs['tenant'] = principal.tenant ?? attrs['header:x-sovra-tenant']
  return attrs
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body))
}
