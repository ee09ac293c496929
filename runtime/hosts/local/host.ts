import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAdaptorServer } from '@hono/node-server'
import type { Project } from '../../config/resolve.ts'
import type { InvocationRecord, IsolateEvent } from '../../isolate/pool.ts'
import { logIsolateEvent } from '../../isolate/isolate-log.ts'
import { SovraError } from '../../core/errors.ts'
import type { CronScheduler } from '../../../triggers/cron/scheduler.ts'
import { createScheduler, type CronOptions } from './crons.ts'
import { ObjectEvents, type EventOptions } from './object-events.ts'
import type { HostServices } from '../../bindings/define.ts'
import { createLocalApp, type PoolDirectoryStatus } from './app.ts'
import { resolveWebhookMaxBytes } from './admin/events.ts'
import type { AdminApp } from '../app/host-app.ts'
import { FunctionSet } from './functions.ts'
import { describeProgress } from '../../isolate/bundle-all.ts'
import { consoleLogger, invocationLogger, SILENT_LOGGER, type HostLogger, type HostMetrics } from './observer.ts'

import { DEFAULT_HOSTNAME, DEFAULT_PORT, DEFAULT_SHUTDOWN_GRACE_MS } from './defaults.ts'

export { DEFAULT_HOSTNAME, DEFAULT_PORT, DEFAULT_SHUTDOWN_GRACE_MS }

/** Options for {@link LocalHost.start}. */
export interface LocalHostOptions {
  project: Project
  log: HostLogger
  metrics: HostMetrics & { setStats?(read: () => ReturnType<FunctionSet['stats']>): void }
  port?: number
  hostname?: string
  /** Where bundles go (default `<project>/.sovra/build`). */
  outDir?: string
  /** The services bindings are served by: bucket adapters, the inference router (infra/pools), ... */
  services?: HostServices
  /** Where cron runs are recorded (default: memory, so no catch-up across restarts) and the clock they run by. */
  crons?: CronOptions
  /** The durable object-event queue, and delivery settings; needed when functions have object_triggers. */
  events?: EventOptions
  /** Pool status for `/_sovra/pools` (the local scaler). */
  pools?: PoolDirectoryStatus
  /** More admin sub-apps (the control plane the CLI uses: runtime/cli/control-app.ts). */
  admin?: readonly AdminApp[]
  /** The state folder this host holds (absolute), reported by `/_sovra/health` so CLI commands can check it. */
  state?: string
  /** The largest MinIO webhook body taken (bytes); default `SOVRA_WEBHOOK_MAX_BYTES`, else 1 MiB. */
  webhookMaxBytes?: number
}

/**
 * The embedded host: every function bundled, its isolates warm, the hono app on a Node HTTP server.
 *
 * @example
 * const host = await LocalHost.start({ project, log, metrics, port: 0 })
 * await fetch(`${host.url}/v1/echo`)
 * await host.close()
 */
export class LocalHost {
  readonly functions: FunctionSet
  readonly server: Server
  readonly url: string
  readonly #log: HostLogger
  /** The cron scheduler, when any function has crons. */
  readonly crons: CronScheduler | undefined
  /** Object-event intake and delivery, when a queue was given. */
  readonly events: ObjectEvents | undefined
  #inflight = 0
  #stopping = false
  #closing: Promise<void> | undefined
  #drained: (() => void) | undefined

  private constructor(
    functions: FunctionSet,
    server: Server,
    url: string,
    log: HostLogger,
    crons: CronScheduler | undefined,
    events: ObjectEvents | undefined,
  ) {
    this.functions = functions
    this.server = server
    this.url = url
    this.#log = log
    this.crons = crons
    this.events = events
  }

  /** True once {@link close} began. */
  get stopping(): boolean {
    return this.#stopping
  }

  /**
   * Bundles and starts every function, then listens.
   * @param options project, logger, metrics, address
   */
  static async start(options: LocalHostOptions): Promise<LocalHost> {
    const { project, log, metrics } = options
    // Checked before anything starts: a bad value is a config error, not a half-started host.
    const webhookMaxBytes = options.webhookMaxBytes ?? resolveWebhookMaxBytes(process.env['SOVRA_WEBHOOK_MAX_BYTES'])
    const logLine = invocationLogger(log)
    const functions = await FunctionSet.load(project, {
      ...(options.outDir === undefined ? {} : { outDir: options.outDir }),
      ...(options.services === undefined ? {} : { services: options.services }),
      // Silent minutes on a large config looked like a hang (issue 11, R10): say what is being built.
      onBuild: (p) =>
        log.info(
          { phase: p.phase, functions: p.functions, bundles: p.distinct, built: p.built, elapsed_ms: p.elapsedMs },
          describeProgress(p),
        ),
      observer: {
        onInvocation(r: InvocationRecord) {
          metrics.onInvocation(r)
          logLine(r)
        },
        onIsolate(e: IsolateEvent) {
          metrics.onIsolate(e)
          logIsolateEvent(log, e)
        },
        // A silent host (sovra/testing's default) leaves the functions' console as text on stdout, as before.
        ...(log === SILENT_LOGGER ? {} : { onLog: consoleLogger(log) }),
      },
    })
    metrics.setStats?.(() => functions.stats())
    // The app and server exist before the host object does; they reach it through this reference.
    const ref: { host?: LocalHost } = {}
    const crons = createScheduler(functions, options.crons, log)
    const events = options.events === undefined ? undefined : new ObjectEvents(functions, options.events, log)
    if (events !== undefined) metrics.setEventCounts?.(() => events.queue.counts())
    const webhookToken = project.secrets.pick(['MINIO_WEBHOOK_TOKEN'])['MINIO_WEBHOOK_TOKEN']
    const app = createLocalApp({
      project,
      functions,
      log,
      metrics,
      shuttingDown: () => ref.host?.stopping ?? false,
      crons,
      events,
      webhookToken,
      webhookMaxBytes,
      buckets: options.services?.buckets,
      pools: options.pools,
      state: options.state,
      admin: options.admin,
    })
    const server = createAdaptorServer({
      fetch: (request, env) => app.fetch(request, env as { incoming?: IncomingMessage; outgoing?: ServerResponse }),
    }) as Server
    server.on('request', (_req, res: ServerResponse) => ref.host?.track(res))
    const hostname = options.hostname ?? DEFAULT_HOSTNAME
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(options.port ?? DEFAULT_PORT, hostname, () => resolve())
      })
    } catch (error) {
      await functions.close(0)
      const code = (error as { code?: string }).code
      if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
        throw new SovraError(
          'ERR_CONFIG',
          `cannot listen on ${hostname}:${options.port ?? DEFAULT_PORT} (${code}); pass a free --port (0 picks one) or another --host`,
          { cause: error },
        )
      }
      throw error
    }
    const { port } = server.address() as AddressInfo
    const url = `http://${hostname.includes(':') ? `[${hostname}]` : hostname}:${port}`
    const host = new LocalHost(functions, server, url, log, crons, events)
    ref.host = host
    await crons?.start()
    await events?.recoverStaged(options.services?.buckets)
    await events?.dispatcher.start()
    log.info(
      {
        url,
        functions: functions
          .all()
          .map((f) => ({ name: f.config.name, routes: f.config.routes, version: f.pool.bundle.version })),
      },
      'sovra listening',
    )
    return host
  }

  private track(res: ServerResponse): void {
    this.#inflight++
    res.once('close', () => {
      this.#inflight--
      if (this.#inflight === 0) this.#drained?.()
    })
  }

  /**
   * Graceful shutdown: let in-flight requests finish (bounded by `graceMs`), then stop listening and stop the
   * isolates. While they drain the listener stays open: `GET /_sovra/health` answers 503 "stopping" (so a load
   * balancer takes the host out) and new function requests 503 ERR_SHUTTING_DOWN with Retry-After. Calling it again
   * returns the same shutdown.
   * @param graceMs the most time in-flight work gets
   */
  close(graceMs = DEFAULT_SHUTDOWN_GRACE_MS): Promise<void> {
    this.#stopping = true
    this.#closing ??= this.#close(graceMs)
    return this.#closing
  }

  async #close(graceMs: number): Promise<void> {
    const started = Date.now()
    this.crons?.stop()
    const eventsStopped = this.events?.dispatcher.stop(graceMs)
    // Kept-alive idle connections close now; every response from here on says `connection: close`.
    this.server.closeIdleConnections()
    if (this.#inflight > 0) {
      this.#log.info({ inflight: this.#inflight, grace_ms: graceMs }, 'shutting down: waiting for in-flight requests')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs)
        this.#drained = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    await eventsStopped
    await this.functions.close(Math.max(0, graceMs - (Date.now() - started)))
    this.server.closeAllConnections()
    await closed
    this.#log.info({ duration_ms: Date.now() - started }, 'sovra stopped')
  }
}
