import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SovraError } from '../core/errors.ts'
import type { Bucket, BucketObject, BucketPutOptions, BucketPutValue, Db, ObjectEvent } from '../core/index.ts'
import { loadConfig } from '../config/load.ts'
import type { Project } from '../config/resolve.ts'
import { LocalHost } from '../hosts/local/host.ts'
import { lateSink } from '../hosts/local/object-events.ts'
import { SILENT_LOGGER, type HostLogger } from '../hosts/local/observer.ts'
import { assemble, type Assembly } from '../../infra/deploy/assemble.ts'
import { stateDir } from '../../infra/deploy/project-state.ts'
import { dbEventQueue } from '../../infra/db/event-queue.ts'
import { migrate } from '../../infra/db/migrate.ts'
import { openPglite } from '../../infra/db/pglite.ts'
import { createPromMetrics } from '../../infra/observe/metrics.ts'
import { startPools, type RunningPools } from '../../infra/pools/start.ts'
import { FsBucket } from '../../infra/storage/fs-bucket.ts'
import { MemoryCronStore, type CronRunRecord } from '../../triggers/cron/scheduler.ts'
import { waitForIdle } from './idle.ts'
import { objectEvent } from './object-event.ts'
import { TestClock } from './test-clock.ts'
import { TriggerRecorder, type TriggerOutcome } from './trigger-recorder.ts'

/** Options for {@link startTestHost}. */
export interface TestHostOptions {
  /** The project's config file: a path or a file URL. */
  config: string | URL
  /** The `[env.NAME]` to apply. */
  env?: string
  /** Environment variables: secrets (`SOVRA_SECRET_*`), `SOVRA_S3_*` (default process.env). */
  processEnv?: Record<string, string | undefined>
  log?: HostLogger
  /**
   * Where buckets and the event queue live. Default: a fresh temporary folder, removed on close (fs buckets, the
   * queue in an in-memory embedded database, bundles). A folder path: that folder, kept. `'project'`: the
   * project's own `.sovra/state`, as `sovra start` uses it. Pools always load models from the project's state
   * (or from the given folder).
   */
  state?: string
  /** The test clock's start, which crons run by (default now). */
  now?: Date | number | string
  /** First retry delay of a failed object event, real milliseconds (default 10; doubles per attempt). */
  retryBackoffMs?: number
  /** How long {@link TestHost.settled} waits before it fails, naming what is still going (default 10 000 ms). */
  settleTimeoutMs?: number
}

/** A running embedded host for tests. */
export interface TestHost {
  url: string
  host: LocalHost
  /** The state folder in use (a temporary one unless `state` was given). */
  state: string
  /** The clock crons run by; it moves only with {@link TestHost.advance} and {@link TestHost.advanceTo}. */
  clock: TestClock
  /** Every trigger attempt so far (crons and object events), in the order they ended. */
  readonly outcomes: readonly TriggerOutcome[]
  /** Every recorded scheduled run (ok, failed, dead, or skipped because the previous run was still going). */
  readonly cronRuns: readonly CronRunRecord[]
  /** Fetches a path (or absolute URL) from the host. */
  fetch(path: string, init?: RequestInit): Promise<Response>
  /** The bucket adapter functions bound to `name` use (to read what handlers wrote, or to seed data). */
  bucket(name: string): Bucket
  /**
   * Writes an object as a function or `sovra objects put` would: the object triggers that match fire. Does not
   * wait for them: {@link TestHost.settled} does.
   */
  putObject(bucket: string, key: string, value: BucketPutValue, options?: BucketPutOptions): Promise<BucketObject>
  /** Deletes an object; the object triggers that match `removed` fire. */
  deleteObject(bucket: string, key: string): Promise<void>
  /** Queues events as MinIO's webhook delivers them (build them with `objectEvent`). */
  sendObjectEvents(
    events: ObjectEvent | readonly ObjectEvent[],
  ): Promise<{ matched: number; inserted: number; duplicates: number }>
  /**
   * Waits until the host is idle: no invocation in flight, no cron attempt running, no object event queued or
   * running (failed object events are retried, on real time, until they succeed or are dead-lettered). Cron
   * retries wait for the clock. Resolves with the attempts that ended since the last settled, advance or
   * triggerCron; fails after `timeoutMs`, naming what is still going.
   */
  settled(options?: { timeoutMs?: number }): Promise<TriggerOutcome[]>
  /** Moves the clock forward; every cron due meanwhile runs, in time order, with its retries. Then as settled. */
  advance(ms: number): Promise<TriggerOutcome[]>
  /** Moves the clock to a time (never back); as {@link TestHost.advance}. */
  advanceTo(time: Date | number | string): Promise<TriggerOutcome[]>
  /** Runs a function's cron now, as `sovra trigger cron` does (scheduledTime: the clock's now). Then as settled. */
  triggerCron(fn: string, cron?: string): Promise<TriggerOutcome[]>
  close(): Promise<void>
}

/**
 * Starts the real embedded host (bundles, isolates, HTTP on 127.0.0.1 with a free port) for a project, with its
 * cron scheduler on a test clock and its object-event queue and dispatcher running, on temporary state.
 * @param options the config file (path or file URL), environment, process env, logger, state, clock start
 * @example
 * const host = await startTestHost({ config: new URL('../wrangler-compat.toml', import.meta.url) })
 * await host.putObject('documents', 'a.md', '# A')
 * const outcomes = await host.settled()   // [{ trigger: 'object', function: 'indexer', ok: true, ... }]
 * await host.advance(24 * 60 * 60_000)    // every cron due in the next day runs
 * await host.close()
 */
export async function startTestHost(options: TestHostOptions): Promise<TestHost> {
  const configPath = options.config instanceof URL ? fileURLToPath(options.config) : options.config
  const processEnv = options.processEnv ?? process.env
  const log = options.log ?? SILENT_LOGGER
  const temp = options.state === undefined ? mkdtempSync(join(tmpdir(), 'sovra-test-host-')) : undefined
  const state = temp ?? (options.state === 'project' ? undefined : options.state)
  const start = options.now === undefined ? Date.now() : new Date(options.now).getTime()
  if (!Number.isFinite(start)) {
    throw new SovraError(
      'ERR_USAGE',
      `startTestHost: now must be a Date, epoch ms or ISO 8601 time, received ${String(options.now)}`,
    )
  }
  const cleanups: Array<() => Promise<void> | void> = []
  if (temp !== undefined) cleanups.push(() => rmSync(temp, { recursive: true, force: true }))
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  }
  try {
    const loaded = loadConfig({ configPath, env: options.env, processEnv }).project
    const project = temp === undefined ? loaded : withoutStorageDir(loaded)
    const ref: { host?: LocalHost } = {}
    // Wired as `sovra start` wires them (infra/deploy/assemble.ts), fs bucket writes included: they stage object
    // events in the host's queue. The store and pools are opened here: the queue must stay in the test's state
    // whatever database the config names, and pools load models from the project's state, not a fresh folder.
    const parts: Assembly = await assemble(project, {
      env: processEnv,
      state,
      log,
      store: false,
      pools: false,
      sink: lateSink(() => ref.host?.events?.sink()),
    })
    cleanups.push(() => parts.close())
    const pools: RunningPools | undefined = await startPools(project, {
      state: temp === undefined ? state : undefined,
      log,
      onLog: () => undefined,
    })
    if (pools !== undefined) cleanups.push(() => pools.close())
    const recorder = new TriggerRecorder()
    let db: Db | undefined
    if (project.functions.some((f) => f.objectTriggers.length > 0)) {
      db = await openPglite(temp === undefined ? join(stateDir(project, state), 'db') : undefined)
      const opened = db
      cleanups.push(() => opened.close())
      await migrate(db)
    }
    const clock = new TestClock(start)
    const cronStore = new MemoryCronStore()
    const host = await LocalHost.start({
      project,
      log,
      metrics: createPromMetrics(),
      port: 0,
      ...(temp === undefined ? {} : { outDir: join(temp, 'build') }),
      services: pools === undefined ? parts.services : { ...parts.services, ai: pools.router },
      crons: { store: cronStore, clock, onAttempt: recorder.onCronAttempt },
      ...(db === undefined
        ? {}
        : {
            events: {
              queue: recorder.observeQueue(dbEventQueue(db)),
              backoffMs: options.retryBackoffMs ?? 10,
            },
          }),
      ...(pools === undefined ? {} : { pools: pools.manager }),
    })
    ref.host = host
    cleanups.push(() => host.close(2000))
    return testHost({
      host,
      project,
      state: temp ?? stateDir(project, state),
      parts,
      clock,
      recorder,
      cronStore,
      settleTimeoutMs: options.settleTimeoutMs ?? 10_000,
      close: cleanup,
    })
  } catch (error) {
    await cleanup()
    throw error
  }
}

/** The project with `[storage] dir` dropped, so that fs buckets live under the test's temporary state. */
function withoutStorageDir(project: Project): Project {
  const storage = project.config.storage
  if (storage?.dir === undefined) return project
  const rest = { ...storage }
  delete rest.dir
  return { ...project, config: { ...project.config, storage: rest } }
}

/** What {@link testHost} is made of. */
interface TestHostParts {
  host: LocalHost
  project: Project
  state: string
  parts: Assembly
  clock: TestClock
  recorder: TriggerRecorder
  cronStore: MemoryCronStore
  settleTimeoutMs: number
  close: () => Promise<void>
}

function testHost({
  host,
  project,
  state,
  parts,
  clock,
  recorder,
  cronStore,
  settleTimeoutMs,
  close,
}: TestHostParts): TestHost {
  const settle = (timeoutMs = settleTimeoutMs): Promise<void> => waitForIdle(host, recorder, timeoutMs)
  const advanceTo = async (time: number): Promise<TriggerOutcome[]> => {
    await clock.advanceTo(time, () => settle())
    await settle()
    return recorder.takeNew()
  }
  const events = () => {
    if (host.events === undefined) {
      throw new SovraError(
        'ERR_USAGE',
        `no function in ${project.file} has object_triggers, so the test host has no event queue; add object_triggers to a function`,
      )
    }
    return host.events
  }
  // fs buckets stage their own events around each write (the sink); other stores (S3, MinIO) send webhooks, which
  // cannot reach a test host, so their events are queued here as the webhook would have delivered them.
  const notify = async (bucket: Bucket, event: () => ObjectEvent): Promise<void> => {
    if (!(bucket instanceof FsBucket) && host.events !== undefined) await host.events.ingest([event()])
  }
  return {
    url: host.url,
    host,
    state,
    clock,
    get outcomes() {
      return recorder.outcomes
    },
    get cronRuns() {
      return cronStore.runs
    },
    fetch: (path, init) => fetch(path.startsWith('http') ? path : `${host.url}${path}`, init),
    bucket: (name) => parts.buckets(name),
    async putObject(bucket, key, value, options) {
      const b = parts.buckets(bucket)
      const put = await b.put(key, value, options)
      await notify(b, () =>
        objectEvent({
          bucket,
          key,
          action: 'put',
          size: put.size,
          etag: put.etag,
          metadata: { ...put.customMetadata },
          ...(put.httpMetadata.contentType === undefined ? {} : { contentType: put.httpMetadata.contentType }),
          ...(put.version === undefined ? {} : { versionId: put.version }),
        }),
      )
      return put
    },
    async deleteObject(bucket, key) {
      const b = parts.buckets(bucket)
      await b.delete(key)
      await notify(b, () => objectEvent({ bucket, key, action: 'delete' }))
    },
    async sendObjectEvents(sent) {
      const { matched, inserted, duplicates } = await events().ingest(
        Array.isArray(sent) ? sent : [sent as ObjectEvent],
      )
      return { matched, inserted, duplicates }
    },
    async settled(options = {}) {
      await settle(options.timeoutMs)
      return recorder.takeNew()
    },
    async advance(ms) {
      if (!Number.isFinite(ms) || ms < 0) {
        throw new SovraError('ERR_USAGE', `advance: expected a duration in milliseconds >= 0, received ${ms}`)
      }
      return advanceTo(clock.now() + ms)
    },
    async advanceTo(time) {
      const t = new Date(time).getTime()
      if (!Number.isFinite(t)) {
        throw new SovraError(
          'ERR_USAGE',
          `advanceTo: expected a Date, epoch ms or ISO 8601 time, received ${String(time)}`,
        )
      }
      return advanceTo(t)
    },
    async triggerCron(fn, cron) {
      const specs = host.crons?.upcoming(0).map((u) => u.spec) ?? []
      if (!specs.some((s) => s.function === fn && (cron === undefined || s.cron === cron))) {
        throw new SovraError(
          'ERR_NOT_FOUND',
          `no cron ${JSON.stringify(cron ?? '*')} for function "${fn}"; crons: ${specs.map((s) => `${s.function} ${JSON.stringify(s.cron)}`).join(', ') || 'none'}`,
        )
      }
      // Not awaited: a failed run waits for its retries on the test clock; settle waits for this attempt only.
      void host.crons?.fire(fn, cron)
      await settle()
      return recorder.takeNew()
    },
    close,
  }
}
