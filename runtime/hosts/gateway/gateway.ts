import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAdaptorServer } from '@hono/node-server'

import { SovraError } from '../../core/errors.ts'
import type { Logger, Metrics } from '../../core/observe.ts'
import type { AiService } from '../../core/ports.ts'
import type { Project } from '../../config/resolve.ts'
import type { AuthOptions } from '../../auth/settings.ts'
import { createAuthenticator } from '../../auth/authenticate.ts'
import { OutcomeWindows } from '../../../triggers/http/outcome-window.ts'
import { judgeCanary, type RolloutThresholds } from '../../../triggers/http/canary-judge.ts'
import { createHostApp, type AdminApp } from '../app/host-app.ts'
import type { NodeEnv } from '../app/executor.ts'
import { ANSWERED_BY, openWhiskExecutor, type ClusterRouting } from './executor.ts'
import { aiAdmin } from './ai-admin.ts'

/** The gateway's metrics: requests by function and status, latency including the blocking invoke. */
export interface GatewayMetrics extends Metrics {
  onRequest(fn: string, status: number, seconds: number): void
}

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
  /** Where request metrics go (infra/observe `createGatewayMetrics`); none: `/_sovra/metrics` is empty. */
  metrics?: GatewayMetrics | undefined
  port?: number
  hostname?: string
  /** How often the current versions are re-read from the package (ms). */
  refreshMs?: number
  /**
   * Automatic rollback of cluster canaries: every `intervalMs` the gateway compares each canary action with stable on
   * what it saw itself (status >= 500 as errors, latency) and rolls it back through `rollback` when the thresholds
   * say so.
   */
  canaryControl?:
    | {
        thresholds: (fn: string) => RolloutThresholds
        rollback: (fn: string, reason: string) => Promise<void>
        intervalMs?: number
      }
    | undefined
  /** The router behind actions' `env.AI` (`POST /_sovra/ai/<op>`), and the bearer token actions send. */
  ai?: { service: AiService; token: string } | undefined
  /** More admin sub-apps (the control plane the CLI uses: runtime/cli/control-app.ts). */
  admin?: readonly AdminApp[] | undefined
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

const NO_METRICS: GatewayMetrics = {
  onRequest() {},
  render: async () => ({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '' }),
}

/**
 * The gateway in front of a cluster (`sovra gateway`): the same host app as the embedded host (routes from the
 * config, callers authenticated by runtime/auth, one error mapping, the admin API) with an executor that invokes the
 * function's current OpenWhisk action (recorded in the package by `sovra deploy`; canaries split by request id,
 * pins by caller). Its own admin endpoint is the AI router (`/_sovra/ai/<op>`); it re-reads the routing every
 * `refreshMs` and, with `canaryControl`, rolls a failing cluster canary back. Prometheus metrics and one log line per
 * request.
 * @param options project, cluster, auth settings, logger, address
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { project, log } = options
  const metrics = options.metrics ?? NO_METRICS
  const base = `${options.apihost.replace(/\/+$/, '')}/api/v1/namespaces/${encodeURIComponent(options.namespace ?? '_')}`
  const authHeader = `Basic ${Buffer.from(options.auth).toString('base64')}`
  let current: Record<string, string> = {}
  let routing: Record<string, ClusterRouting> = {}
  // What each action did, as the gateway saw it: the canary controller's evidence.
  const outcomes = new OutcomeWindows()

  async function refresh(): Promise<void> {
    const get = (): Promise<Response> =>
      fetch(`${base}/packages/${encodeURIComponent(project.name)}`, { headers: { authorization: authHeader } })
    // A kept-alive connection the server closed meanwhile fails once with ECONNRESET; a read is safe to repeat.
    const res = await get().catch((e: unknown) =>
      (e as { cause?: { code?: string } }).cause?.code === 'ECONNRESET' ? get() : Promise.reject(e),
    )
    if (!res.ok)
      throw new SovraError(
        'ERR_UPSTREAM',
        `reading package ${project.name} from ${options.apihost} failed: ${res.status} ${(await res.text()).slice(0, 200)}; deploy first (sovra deploy --target openwhisk)`,
      )
    const pkg = (await res.json()) as { annotations?: Array<{ key: string; value: unknown }> }
    current = (pkg.annotations?.find((a) => a.key === 'sovra-current')?.value ?? {}) as Record<string, string>
    routing = (pkg.annotations?.find((a) => a.key === 'sovra-routing')?.value ?? {}) as Record<string, ClusterRouting>
  }

  async function checkCanaries(): Promise<void> {
    const control = options.canaryControl
    if (control === undefined) return
    for (const [fn, r] of Object.entries(routing)) {
      if (r.canary === undefined) continue
      const t = control.thresholds(fn)
      const verdict = judgeCanary(
        t,
        outcomes.summary(r.stable, t.windowS),
        outcomes.summary(r.canary.version, t.windowS),
      )
      if (verdict.verdict !== 'rollback') continue
      log.warn(
        { function: fn, canary: r.canary.version, reason: verdict.reason },
        'gateway: rolling the cluster canary back',
      )
      await control.rollback(fn, verdict.reason)
      await refresh()
    }
  }

  const executor = openWhiskExecutor({
    project,
    apihost: options.apihost,
    auth: options.auth,
    namespace: options.namespace ?? '_',
    current: () => current,
    routing: () => routing,
    record: (action, status, ms) => outcomes.add(action, ms, status),
  })
  const authenticate = createAuthenticator(options.jwt ?? {}, project.tiers.names)
  const app = createHostApp({
    project,
    executor,
    log,
    metrics,
    authenticate,
    admin: [aiAdmin(project, options.ai), ...(options.admin ?? [])],
    onResponse(r) {
      if (r.fn !== undefined) metrics.onRequest(r.fn, r.status, r.durationMs / 1000)
      const action = r.response === undefined ? undefined : ANSWERED_BY.get(r.response)
      const fields = {
        function: r.fn,
        action,
        status: r.status,
        duration_ms: Math.round(r.durationMs),
        subject: r.subject,
        method: r.method,
        path: r.path,
      }
      if (r.error === undefined) log.info(fields, 'gateway request')
      else log.warn({ ...fields, code: r.error.code, error: r.error.message }, 'gateway request failed')
    },
  })

  // A gateway may start before the first deploy: it answers 404 per function until the package exists.
  await refresh().catch((e: unknown) => log.warn({ err: (e as Error).message }, 'gateway: no current versions yet'))
  const server = createAdaptorServer({ fetch: (request, env) => app.fetch(request, env as NodeEnv) }) as Server
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 8788, options.hostname ?? '127.0.0.1', () => resolve())
  })
  const timer = setInterval(
    () =>
      void refresh().catch((e: unknown) =>
        log.error({ err: (e as Error).message }, 'gateway: reading current versions failed'),
      ),
    options.refreshMs ?? 10_000,
  )
  timer.unref()
  const controlTimer =
    options.canaryControl === undefined
      ? undefined
      : setInterval(
          () =>
            void checkCanaries().catch((e: unknown) =>
              log.error({ err: (e as Error).message }, 'gateway: canary check failed'),
            ),
          options.canaryControl.intervalMs ?? 5000,
        )
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
