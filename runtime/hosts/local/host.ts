import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAdaptorServer } from '@hono/node-server'
import type { Project } from '../../config/resolve.ts'
import type { InvocationRecord, IsolateEvent } from '../../isolate/pool.ts'
import { SovraError } from '../../core/errors.ts'
import type { ObjectEvent } from '../../core/handlers.ts'
import { ObjectDispatcher, DEFAULT_MAX_RETRIES } from '../../../triggers/object/dispatcher.ts'
import { deliveriesFor } from '../../../triggers/object/match.ts'
import type { EventQueue, EventSink } from '../../../triggers/object/queue.ts'
import type { FunctionConfig } from '../../config/schema.ts'
import { parseSchedule } from '../../../triggers/cron/schedule.ts'
import { CronScheduler, MemoryCronStore, type CronRunStore } from '../../../triggers/cron/scheduler.ts'
import type { Clock } from '../../../triggers/cron/clock.ts'
import type { Bucket } from '../../core/ports.ts'
import { createLocalApp } from './app.ts'
import { FunctionSet } from './functions.ts'
import { invocationLogger, type HostLogger, type HostMetrics } from './observer.ts'

/** Default port, as wrangler dev. */
export const DEFAULT_PORT = 8787
/** Default address: loopback only; exposing the host is a deliberate `--host 0.0.0.0`. */
export const DEFAULT_HOSTNAME = '127.0.0.1'
/** How long shutdown waits for in-flight requests before closing them. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000

/** Options for {@link LocalHost.start}. */
export interface LocalHostOptions {
  project: Project
  log: HostLogger
  metrics: HostMetrics & { setStats?(read: () => ReturnType<FunctionSet['stats']>): void }
  port?: number
  hostname?: string
  /** Where bundles go (default `<project>/.sovra/build`). */
  outDir?: string
  /** The bucket adapters behind `[[r2_buckets]]` bindings. */
  buckets?: (name: string) => Bucket
  /** Where cron runs are recorded (default: memory, so no catch-up across restarts) and the clock they run by. */
  crons?: { store?: CronRunStore; clock?: Clock }
  /** The durable object-event queue, and delivery settings; needed when functions have object_triggers. */
  events?: { queue: EventQueue; backoffMs?: number; pollMs?: number; concurrency?: number }
}

/**
 * The object-event side of a host: matches events to functions' object_triggers, queues them durably and
 * delivers them through the functions' isolates.
 */
export class ObjectEvents {
  readonly queue: EventQueue
  readonly dispatcher: ObjectDispatcher
  readonly #functions: FunctionSet

  constructor(functions: FunctionSet, options: NonNullable<LocalHostOptions['events']>, log: HostLogger) {
    this.#functions = functions
    this.queue = options.queue
    this.dispatcher = new ObjectDispatcher({
      queue: options.queue,
      ...(options.backoffMs === undefined ? {} : { backoffMs: options.backoffMs }),
      ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
      maxRetries: (fn) => functions.get(fn)?.config.worker.object_triggers?.[0]?.max_retries ?? DEFAULT_MAX_RETRIES,
      async run(fn, event) {
        const loaded = functions.get(fn)
        if (loaded === undefined) return { ok: false, error: `function "${fn}" is not loaded` }
        const r = await loaded.pool.run('object', { event }, { trigger: 'object' })
        return { ok: r.ok, error: r.detail }
      },
      onAttempt(item, outcome, error) {
        if (outcome === 'done') return
        const fields = { event_id: item.id, function: item.function, bucket: item.event.bucket, key: item.event.key, attempts: item.attempts, error }
        if (outcome === 'dead') log.error(fields, 'object event dead-lettered')
        else log.warn(fields, 'object event will be retried')
      },
      onError: (error) => log.error({ error: String(error) }, 'object event queue failed'),
    })
  }

  /** The durable sink for fs-bucket writes: events staged before the write is visible, released after it. */
  sink(): EventSink {
    return {
      stage: async (event) => {
        const deliveries = deliveriesFor(this.#triggers(), [event])
        return deliveries.length === 0 ? [] : (await this.queue.enqueue(deliveries, { staged: true })).ids
      },
      commit: async (ids) => {
        await this.queue.release(ids as number[])
        this.dispatcher.wake()
      },
      abort: (ids, reason) => this.queue.discard(ids as number[], reason),
    }
  }

  /**
   * Resolves events left staged by a crash between queueing and writing: released when the object is as the event
   * says (created with that etag, or removed), discarded otherwise.
   * @param buckets the adapters to look at
   */
  async recoverStaged(buckets: ((name: string) => Bucket) | undefined): Promise<{ released: number; discarded: number }> {
    const staged = await this.queue.list({ status: 'staged', limit: 100_000 })
    const release: number[] = []
    const discard: number[] = []
    for (const item of staged) {
      const head = buckets === undefined ? null : await buckets(item.event.bucket).head(item.event.key)
      const happened = item.event.type === 'removed' ? head === null : head !== null && head.etag === item.event.etag
      ;(happened ? release : discard).push(item.id)
    }
    await this.queue.release(release)
    await this.queue.discard(discard, 'the write was interrupted before the object changed')
    return { released: release.length, discarded: discard.length }
  }

  #triggers(): Array<{ name: string; triggers: NonNullable<FunctionConfig['worker']['object_triggers']> }> {
    return this.#functions.all().map((f) => ({ name: f.config.name, triggers: f.config.worker.object_triggers ?? [] }))
  }

  /**
   * Queues the events for every function whose object_triggers match them; resolves once they are committed.
   * @param events normalised events
   */
  async ingest(events: readonly ObjectEvent[]): Promise<{ matched: number; inserted: number; duplicates: number }> {
    const deliveries = deliveriesFor(this.#triggers(), events)
    if (deliveries.length === 0) return { matched: 0, inserted: 0, duplicates: 0 }
    const r = await this.queue.enqueue(deliveries)
    this.dispatcher.wake()
    return { matched: deliveries.length, ...r }
  }
}

/**
 * The cron scheduler for every function's crons, running each through the function's isolate pool.
 * @param functions the loaded functions
 * @param options store and clock
 * @param log where runs are reported
 */
function createScheduler(functions: FunctionSet, options: LocalHostOptions['crons'], log: HostLogger): CronScheduler | undefined {
  const schedules = functions.all().flatMap(({ config }) => config.crons.map((cron) => parseSchedule({
    function: config.name, cron, timezone: config.timezone, startDate: config.startDate, stopDate: config.stopDate, catchUp: config.catchUpCrons,
  })))
  if (schedules.length === 0) return undefined
  return new CronScheduler({
    schedules,
    store: options?.store ?? new MemoryCronStore(),
    ...(options?.clock === undefined ? {} : { clock: options.clock }),
    async run(spec, scheduledTime) {
      const fn = functions.get(spec.function)
      if (fn === undefined) return { ok: false, noRetry: true, error: `function "${spec.function}" is not loaded` }
      const r = await fn.pool.run('scheduled', { cron: spec.cron, scheduledTime }, { trigger: 'cron' })
      return { ok: r.ok, noRetry: r.noRetry, error: r.detail }
    },
    onRecord(run) {
      const fields = { function: run.function, cron: run.cron, scheduled_time: new Date(run.scheduledTime).toISOString(), status: run.status, attempts: run.attempts, error: run.error }
      if (run.status === 'ok') log.info(fields, 'cron run')
      else log.warn(fields, 'cron run')
    },
  })
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
  #drained: (() => void) | undefined

  private constructor(functions: FunctionSet, server: Server, url: string, log: HostLogger, crons: CronScheduler | undefined, events: ObjectEvents | undefined) {
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
    const logLine = invocationLogger(log)
    const functions = await FunctionSet.load(project, {
      ...(options.outDir === undefined ? {} : { outDir: options.outDir }),
      ...(options.buckets === undefined ? {} : { buckets: options.buckets }),
      observer: {
        onInvocation(r: InvocationRecord) {
          metrics.onInvocation(r)
          logLine(r)
        },
        onIsolate(e: IsolateEvent) {
          metrics.onIsolate(e)
          if (e.event === 'exit' && e.reason !== 'unavailable') log.warn({ function: e.function, reason: e.reason }, 'isolate replaced')
          if (e.event === 'init-error') log.error({ function: e.function, reason: e.reason }, 'isolate failed to load')
        },
      },
    })
    metrics.setStats?.(() => functions.stats())
    // The app and server exist before the host object does; they reach it through this reference.
    const ref: { host?: LocalHost } = {}
    const crons = createScheduler(functions, options.crons, log)
    const events = options.events === undefined ? undefined : new ObjectEvents(functions, options.events, log)
    if (events !== undefined) metrics.setEventCounts?.(() => events.queue.counts())
    const webhookToken = project.secrets.pick(['MINIO_WEBHOOK_TOKEN'])['MINIO_WEBHOOK_TOKEN']
    const app = createLocalApp({ project, functions, log, metrics, shuttingDown: () => ref.host?.stopping ?? false, crons, events, webhookToken, buckets: options.buckets })
    const server = createAdaptorServer({ fetch: (request, env) => app.fetch(request, env as { incoming?: IncomingMessage; outgoing?: ServerResponse }) }) as Server
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
        throw new SovraError('ERR_CONFIG', `cannot listen on ${hostname}:${options.port ?? DEFAULT_PORT} (${code}); pass a free --port (0 picks one) or another --host`, { cause: error })
      }
      throw error
    }
    const { port } = server.address() as AddressInfo
    const url = `http://${hostname.includes(':') ? `[${hostname}]` : hostname}:${port}`
    const host = new LocalHost(functions, server, url, log, crons, events)
    ref.host = host
    await crons?.start()
    await events?.recoverStaged(options.buckets)
    await events?.dispatcher.start()
    log.info({ url, functions: functions.all().map((f) => ({ name: f.config.name, routes: f.config.routes, version: f.pool.bundle.version })) }, 'sovra listening')
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
   * Graceful shutdown: stop accepting connections, let in-flight requests finish (bounded by `graceMs`), then stop
   * the isolates. Health answers 503 "stopping" meanwhile.
   * @param graceMs the most time in-flight work gets
   */
  async close(graceMs = DEFAULT_SHUTDOWN_GRACE_MS): Promise<void> {
    if (this.#stopping) return
    this.#stopping = true
    const started = Date.now()
    this.crons?.stop()
    const eventsStopped = this.events?.dispatcher.stop(graceMs)
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
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
    await eventsStopped
    await this.functions.close(Math.max(0, graceMs - (Date.now() - started)))
    this.server.closeAllConnections()
    await closed
    this.#log.info({ duration_ms: Date.now() - started }, 'sovra stopped')
  }
}
