import type { Project } from '../../config/resolve.ts'
import type { FunctionSet } from './functions.ts'
import type { CronScheduler } from '../../../triggers/cron/scheduler.ts'
import type { Bucket } from '../../core/ports.ts'
import type { ObjectEvents } from './object-events.ts'
import type { HostLogger, HostMetrics } from './observer.ts'
import { createHostApp, type AdminApp, type HostApp } from '../app/host-app.ts'
import { isolateExecutor } from './executor.ts'
import { eventsAdmin } from './admin/events.ts'
import { objectsAdmin } from './admin/objects.ts'
import { triggersAdmin } from './admin/triggers.ts'

/** What the embedded host's hono app needs. */
export interface LocalAppOptions {
  project: Project
  functions: FunctionSet
  log: HostLogger
  metrics: HostMetrics
  /** True once shutdown began: health says so and responses close their connections. */
  shuttingDown?: () => boolean
  /** The cron scheduler, for the triggers endpoints. */
  crons?: CronScheduler | undefined
  /** Object-event intake (MinIO webhooks) and the queue (events endpoints). */
  events?: ObjectEvents | undefined
  /** The bearer token MinIO's webhook must send (the secret MINIO_WEBHOOK_TOKEN); none -> every call refused. */
  webhookToken?: string | undefined
  /** The largest MinIO webhook body taken, in bytes (default 1 MiB); larger ones get 413 while they stream. */
  webhookMaxBytes?: number | undefined
  /** The bucket adapters, for the objects endpoints the CLI uses while a host holds the state. */
  buckets?: ((name: string) => Bucket) | undefined
  /** Inference pool status (the local scaler), for `/_sovra/pools`. */
  pools?: PoolDirectoryStatus | undefined
  /** The state folder the host holds, reported by `/_sovra/health`. */
  state?: string | undefined
  /** More admin sub-apps, mounted after the embedded host's own (the control plane). */
  admin?: readonly AdminApp[] | undefined
}

/** What `/_sovra/pools` reads: one summary per pool (replicas, queue, p95 vs budget, surge windows). */
export interface PoolDirectoryStatus {
  summary(): unknown[]
}

/**
 * Creates the embedded host's HTTP app: the shared host app (runtime/hosts/app: routes, callers, errors, the admin
 * API's built-in endpoints) with the isolate executor and the embedded host's admin sub-apps (triggers, events,
 * objects, pools).
 *
 * @param options the project, its loaded functions, logger and metrics, and the services the admin API reads
 * @example
 * const app = createLocalApp({ project, functions, log, metrics })
 * const res = await app.request('/v1/echo?x=1')
 */
export function createLocalApp(options: LocalAppOptions): LocalApp {
  return createHostApp({
    project: options.project,
    executor: isolateExecutor(options.functions),
    log: options.log,
    metrics: options.metrics,
    admin: [triggersAdmin(options), eventsAdmin(options), objectsAdmin(options), ...(options.admin ?? [])],
    ...(options.shuttingDown === undefined ? {} : { shuttingDown: options.shuttingDown }),
    state: options.state,
  })
}

/** The embedded host's HTTP handler. */
export type LocalApp = HostApp
