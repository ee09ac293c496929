import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Registry as MetricsRegistry } from 'prom-client'

import type { Project } from '../../runtime/config/resolve.ts'
import { SovraError } from '../../runtime/core/errors.ts'
import type { Db } from '../../runtime/core/ports.ts'
import type { HostServices } from '../../runtime/bindings/define.ts'
import type { LocalHostOptions } from '../../runtime/hosts/local/host.ts'
import type { HostLogger } from '../../runtime/hosts/local/observer.ts'
import { dbCronStore } from '../db/cron-store.ts'
import { dbEventQueue } from '../db/event-queue.ts'
import type { FsEventSink } from '../storage/fs-bucket.ts'
import type { Registry } from '../registry/registry.ts'
import type { TrustPolicy } from '../registry/trust.ts'
import { startPools, type RunningPools } from '../pools/start.ts'
import { auditLog, type AuditLog } from './audit.ts'
import {
  createBucketProvider,
  loadTrust,
  needsStore,
  openRegistry,
  openStore,
  stateDir,
  type BucketProvider,
} from './project-state.ts'

/**
 * The most functions one embedded host serves by default. Each function is a bundle and an isolate pool with its
 * warm minimum of worker threads (isolates.min, default 1), so a config with 150 000 functions would never finish
 * starting (issue 11, R10). Raise it with `SOVRA_MAX_FUNCTIONS` (or {@link AssembleOptions.maxFunctions}).
 */
export const DEFAULT_MAX_FUNCTIONS = 1000

/** What {@link assemble} wires. */
export interface AssembleOptions {
  /** The state folder override. */
  state?: string | undefined
  /** Environment variables (S3, database URL); default process.env. */
  env?: Record<string, string | undefined>
  log: HostLogger
  /**
   * Open the SQL store: `auto` (default) when functions have durable triggers, a control plane state exists, or a
   * database server is configured; `true` always; `false` never.
   */
  store?: 'auto' | boolean
  /** Start `[[pools]]` (default true). */
  pools?: boolean
  /** Where fs bucket writes report object events. */
  sink?: FsEventSink
  /** Where pool replica log lines go (default stdout). */
  onPoolLog?: (line: string) => void
  /** The Prometheus registry pool metrics join. */
  metrics?: MetricsRegistry
  /** The most functions to serve (default `SOVRA_MAX_FUNCTIONS`, else {@link DEFAULT_MAX_FUNCTIONS}). */
  maxFunctions?: number
}

/** A project's adapters, wired: what a host (or a command) runs on. */
export interface Assembly {
  buckets: BucketProvider
  db: Db | undefined
  pools: RunningPools | undefined
  registry: Registry
  trust: TrustPolicy
  audit: AuditLog | undefined
  /** The services bindings are served by. */
  services: HostServices
  /** The embedded host's options for these adapters: services, cron store, event queue, pool status. */
  hostOptions(): Pick<LocalHostOptions, 'services' | 'crons' | 'events' | 'pools'>
  /** Stops the pools and closes the store. */
  close(): Promise<void>
}

/**
 * Wires a project's adapters from its config, the one way every composition root does it (`sovra start`,
 * `sovra/testing`, the gateway): buckets (fs or S3), the SQL store (PGlite or PostgreSQL, migrated), the registry
 * and trust policy, the audit log, and the inference pools (started warm; replicas are child processes).
 * @param project the resolved project
 * @param options state folder, environment, logger, what to open
 * @example
 * const parts = await assemble(project, { log })
 * const host = await LocalHost.start({ project, log, metrics, ...parts.hostOptions() })
 */
export async function assemble(project: Project, options: AssembleOptions): Promise<Assembly> {
  const env = options.env ?? process.env
  // Before anything is opened or started: a config too large to serve fails in seconds, not after minutes of work.
  checkFunctionCount(project, options.maxFunctions ?? maxFunctionsFrom(env))
  const state = options.state
  const store = options.store ?? 'auto'
  // The store also holds the control plane's versions once something was deployed with `sovra deploy`.
  const wantsDb =
    store === true ||
    (store === 'auto' &&
      (needsStore(project) ||
        existsSync(join(stateDir(project, state), 'db')) ||
        (env['SOVRA_DATABASE_URL'] ?? project.config.database?.url) !== undefined))
  const buckets = createBucketProvider(project, {
    env,
    ...(state === undefined ? {} : { state }),
    ...(options.sink === undefined ? {} : { sink: options.sink }),
  })
  const db = wantsDb ? await openStore(project, { env, state }) : undefined
  let pools: RunningPools | undefined
  try {
    // Pools first: functions that bind env.AI load against warm replicas.
    pools =
      options.pools === false
        ? undefined
        : await startPools(project, {
            state,
            log: options.log,
            ...(options.metrics === undefined ? {} : { registry: options.metrics }),
            ...(options.onPoolLog === undefined ? {} : { onLog: options.onPoolLog }),
          })
  } catch (e) {
    await db?.close()
    throw e
  }
  const services: HostServices = { buckets, ...(pools === undefined ? {} : { ai: pools.router }) }
  const hasObjectTriggers = project.functions.some((f) => f.objectTriggers.length > 0)
  return {
    buckets,
    db,
    pools,
    services,
    registry: openRegistry(project, state),
    trust: loadTrust(project),
    audit: db === undefined ? undefined : auditLog(db),
    hostOptions: () => ({
      services,
      ...(db === undefined ? {} : { crons: { store: dbCronStore(db) } }),
      ...(db !== undefined && hasObjectTriggers ? { events: { queue: dbEventQueue(db) } } : {}),
      ...(pools === undefined ? {} : { pools: pools.manager }),
    }),
    async close() {
      await pools?.close()
      await db?.close()
    },
  }
}

function maxFunctionsFrom(env: Record<string, string | undefined>): number {
  const raw = env['SOVRA_MAX_FUNCTIONS']
  if (raw === undefined || raw === '') return DEFAULT_MAX_FUNCTIONS
  const n = /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN
  if (!Number.isSafeInteger(n) || n < 1)
    throw new SovraError(
      'ERR_CONFIG',
      `SOVRA_MAX_FUNCTIONS: expected a whole number >= 1, received ${JSON.stringify(raw)}`,
    )
  return n
}

/**
 * Refuses a project with more functions than one host serves.
 * @param project the resolved project
 * @param max the most functions allowed
 */
export function checkFunctionCount(project: Project, max: number): void {
  const count = project.functions.length
  if (count <= max) return
  const distinct = new Set(project.functions.map((f) => f.main)).size
  throw new SovraError(
    'ERR_CONFIG',
    `${project.file} has ${count} [[functions]] (${distinct} distinct entry module${distinct === 1 ? '' : 's'}); one host serves at most ${max}, each with its own isolate pool and warm isolates. Split the project across hosts, or raise the limit with SOVRA_MAX_FUNCTIONS=${count} if this machine has the memory for ${count} pools`,
  )
}
