import { Gauge, type Registry } from 'prom-client'
import type { Logger } from '../../runtime/core/observe.ts'

import { SovraError } from '../../runtime/core/errors.ts'
import type { PoolConfig } from '../../runtime/config/pools.ts'
import { activeSurge, nextSurgeWindows, type BusinessCalendar, type SurgeWindow } from './calendar.ts'
import type { PoolDirectory, PoolView, Replica, ReplicaStatus } from './replica.ts'
import { LocalReplica, RemoteReplica, type LocalReplicaOptions } from './replica-process.ts'
import { decideReplicas, type ScaleDecision, type ScaleMemory } from './scale-policy.ts'
import { runSurgeCheck, type SurgeCheck } from './surge-check.ts'

/** A replica the manager can stop. */
export type ManagedReplica = Replica & { stop(drainMs?: number): Promise<void> }

/** How the manager is set up. */
export interface PoolManagerOptions {
  pools: readonly PoolConfig[]
  calendar: BusinessCalendar
  /** Starts a local replica of a pool (default: a `sovra pool serve` child process). */
  spawn: (pool: PoolConfig, id: string, onSettled: (r: ManagedReplica) => void) => ManagedReplica
  log: Logger
  /** The clock (tests drive it). */
  now?: () => number
  /** Gauges for replicas, desired counts and surge checks go here. */
  registry?: Registry
  /** How long a scale-down waits for in-flight requests. */
  drainMs?: number
}

interface PoolEntry {
  config: PoolConfig
  replicas: ManagedReplica[]
  remote: RemoteReplica[]
  memory: ScaleMemory
  last: ScaleDecision | undefined
  serial: number
  failures: number
  nextSpawnAt: number
  checks: Map<string, SurgeCheck>
  lastCheck: SurgeCheck | undefined
}

/** One pool's state for `sovra pools` and `/_sovra/pools`. */
export interface PoolSummary {
  name: string
  alias: string
  engine: string
  tier: string
  clearance: string
  class: string
  replicas: Array<{
    id: string
    state: string
    url: string | undefined
    outstanding: number
    model_sha256: string | undefined
  }>
  ready: number
  desired: number
  reason: string
  min_replicas: number
  max_replicas: number
  queue: number
  outstanding: number
  p95_ms: number | null
  p95_budget_ms: number
  surge: {
    active: { phase: string; min_replicas: number; opens_at: string; closes_at: string } | null
    next: Array<{ day: string; warm_from: string; opens_at: string; closes_at: string; min_replicas: number }>
    last_check: SurgeCheck | null
  }
}

/**
 * The local scaler: keeps each pool's replicas (child processes, or remote endpoints) at the count the policy
 * asks for, replaces crashed ones, pre-warms surge windows and checks their p95 before they open. It is also the
 * router's directory of pools.
 */
export class PoolManager implements PoolDirectory {
  readonly #entries: PoolEntry[]
  readonly #opts: PoolManagerOptions
  readonly #now: () => number
  #timer: ReturnType<typeof setInterval> | undefined
  #ticking: Promise<void> | undefined
  #closed = false

  /** @param options pools, calendar, spawner, logger, clock, metrics registry */
  constructor(options: PoolManagerOptions) {
    this.#opts = options
    this.#now = options.now ?? Date.now
    this.#entries = options.pools.map((config) => ({
      config,
      replicas: [],
      remote: config.endpoints.map((u) => new RemoteReplica(u)),
      memory: {},
      last: undefined,
      serial: 0,
      failures: 0,
      nextSpawnAt: 0,
      checks: new Map(),
      lastCheck: undefined,
    }))
    if (options.registry !== undefined) this.#registerMetrics(options.registry)
  }

  /** Pools and their replicas, for the router. */
  pools(): PoolView[] {
    return this.#entries.map((e) => ({ config: e.config, replicas: [...e.remote, ...e.replicas] }))
  }

  /**
   * Brings every pool to its floor (min_replicas, or an active surge) and waits until those replicas are ready.
   * Throws ERR_CONFIG naming the pool and the reason when a replica fails to start.
   */
  async start(): Promise<void> {
    await this.tick()
    const waits = this.#entries.flatMap((e) => e.replicas.map((r) => this.#whenSettled(e, r)))
    await Promise.all(this.#entries.flatMap((e) => e.remote.map((r) => r.check())))
    await Promise.all(waits)
  }

  #whenSettled(e: PoolEntry, r: ManagedReplica): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (r.state === 'ready') return resolve()
        if (r.state === 'failed' || r.state === 'stopped') {
          return reject(
            new SovraError(
              'ERR_CONFIG',
              `pool ${JSON.stringify(e.config.name)}: replica ${r.id} failed to start: ${(r as { failure?: string }).failure ?? r.state}`,
            ),
          )
        }
        setTimeout(check, 50)
      }
      check()
    })
  }

  /** Ticks every `intervalMs` until closed. */
  run(intervalMs = 1000): void {
    this.#timer = setInterval(
      () =>
        void this.tick().catch((e: unknown) =>
          this.#opts.log.error({ err: (e as Error).message }, 'pool scaler tick failed'),
        ),
      intervalMs,
    )
    this.#timer.unref()
  }

  /** One scaling pass over every pool (polls status, decides, starts or drains replicas, runs surge checks). */
  tick(): Promise<void> {
    this.#ticking ??= this.#tick().finally(() => {
      this.#ticking = undefined
    })
    return this.#ticking
  }

  async #tick(): Promise<void> {
    if (this.#closed) return
    const now = this.#now()
    for (const e of this.#entries) {
      await Promise.all(e.remote.map((r) => r.check()))
      await Promise.all(e.replicas.filter((r) => r.state === 'ready').map((r) => pollStatus(r)))
      for (const r of e.replicas.filter((x) => x.state === 'failed' || x.state === 'stopped')) {
        if (r.state === 'failed') {
          e.failures++
          e.nextSpawnAt = now + Math.min(60_000, 1000 * 2 ** Math.min(e.failures, 6))
          this.#opts.log.error(
            { pool: e.config.name, replica: r.id, failure: (r as { failure?: string }).failure },
            'pool replica failed; it will be replaced',
          )
        }
        e.replicas.splice(e.replicas.indexOf(r), 1)
      }
      const capacity = e.replicas.filter((r) => r.state === 'starting' || r.state === 'ready')
      const ready = [...e.remote, ...capacity].filter((r) => r.state === 'ready')
      const surge = activeSurge(e.config.surge, this.#opts.calendar, now)
      const p95s = ready.map((r) => r.status?.p95_ms[e.config.class]).filter((x): x is number => typeof x === 'number')
      const decision = decideReplicas(
        e.config,
        {
          now,
          current: capacity.length + e.remote.length,
          outstanding: ready.reduce((n, r) => n + r.outstanding, 0),
          queued: ready.reduce(
            (n, r) => n + (r.status === undefined ? 0 : r.status.queue.interactive + r.status.queue.batch),
            0,
          ),
          p95Ms: p95s.length ? Math.max(...p95s) : undefined,
          surgeMin: surge?.minReplicas,
        },
        e.memory,
      )
      if (e.last?.target !== decision.target)
        this.#opts.log.info(
          {
            pool: e.config.name,
            from: capacity.length + e.remote.length,
            to: decision.target,
            reason: decision.reason,
          },
          'pool scale decision',
        )
      e.last = decision
      const localTarget = decision.target - e.remote.length
      if (localTarget > capacity.length && now >= e.nextSpawnAt) {
        for (let i = capacity.length; i < localTarget; i++) this.#spawn(e, i + 1, localTarget)
      } else if (localTarget < capacity.length) {
        const victim = [...capacity].sort(
          (a, b) =>
            (a.state === 'starting' ? -1 : 0) - (b.state === 'starting' ? -1 : 0) || a.outstanding - b.outstanding,
        )[0]
        if (victim !== undefined)
          void victim
            .stop(this.#opts.drainMs)
            .then(() =>
              this.#opts.log.info({ pool: e.config.name, replica: victim.id }, 'pool replica stopped (scale-down)'),
            )
      }
      if (surge !== undefined) await this.#surgeCheck(e, surge.window, ready.length)
    }
  }

  /** Starts replica `index` of the `of` this pool should have now, logging its progress (warming, warm in N ms). */
  #spawn(e: PoolEntry, index: number, of: number): void {
    const id = `${e.config.name}-${++e.serial}`
    const name = e.config.name
    const progress = { pool: name, replica: id, index, of }
    this.#opts.log.info(
      { ...progress, engine: e.config.engine, model: e.config.model },
      `warming pool ${name} replica ${index}/${of} (${id}, ${e.config.engine} ${e.config.model})`,
    )
    const r = this.#opts.spawn(e.config, id, (settled) => {
      if (settled.state === 'ready') {
        e.failures = 0
        const ms = (settled.readyAt ?? 0) - settled.startedAt
        this.#opts.log.info(
          { ...progress, url: settled.url, start_ms: ms },
          `pool ${name} replica ${index}/${of} warm in ${ms} ms (${id})`,
        )
      }
    })
    e.replicas.push(r)
  }

  async #surgeCheck(e: PoolEntry, window: SurgeWindow, ready: number): Promise<void> {
    const key = `${window.rule}:${window.day}`
    if (e.checks.has(key) || ready < Math.min(window.minReplicas, e.config.maxReplicas)) return
    const replicas = [...e.remote, ...e.replicas].filter((r) => r.state === 'ready')
    const check = await runSurgeCheck(e.config, replicas, window, this.#now)
    e.checks.set(key, check)
    e.lastCheck = check
    const log = check.ok ? this.#opts.log.info.bind(this.#opts.log) : this.#opts.log.warn.bind(this.#opts.log)
    log(
      { pool: e.config.name, ...check },
      check.ok
        ? 'surge readiness check passed'
        : 'surge readiness check FAILED: p95 over budget before the window opens',
    )
  }

  /** Every pool's replicas, load, p95 against budget and surge windows. */
  summary(): PoolSummary[] {
    const now = this.#now()
    return this.#entries.map((e) => {
      const all = [...e.remote, ...e.replicas]
      const ready = all.filter((r) => r.state === 'ready')
      const p95s = ready.map((r) => r.status?.p95_ms[e.config.class]).filter((x): x is number => typeof x === 'number')
      const active = activeSurge(e.config.surge, this.#opts.calendar, now)
      const iso = (ms: number): string => new Date(ms).toISOString()
      return {
        name: e.config.name,
        alias: e.config.alias,
        engine: e.config.engine,
        tier: e.config.tier,
        clearance: e.config.clearance,
        class: e.config.class,
        replicas: all.map((r) => ({
          id: r.id,
          state: r.state,
          url: r.url,
          outstanding: r.outstanding,
          model_sha256: r.modelDigest,
        })),
        ready: ready.length,
        desired: e.last?.target ?? e.config.minReplicas,
        reason: e.last?.reason ?? 'not started',
        min_replicas: e.config.minReplicas,
        max_replicas: e.config.maxReplicas,
        queue: ready.reduce(
          (n, r) => n + (r.status === undefined ? 0 : r.status.queue.interactive + r.status.queue.batch),
          0,
        ),
        outstanding: ready.reduce((n, r) => n + r.outstanding, 0),
        p95_ms: p95s.length ? Math.round(Math.max(...p95s)) : null,
        p95_budget_ms: e.config.p95BudgetMs,
        surge: {
          active:
            active === undefined
              ? null
              : {
                  phase: active.phase,
                  min_replicas: active.minReplicas,
                  opens_at: iso(active.window.opensAt),
                  closes_at: iso(active.window.closesAt),
                },
          next:
            e.config.surge.length === 0
              ? []
              : nextSurgeWindows(e.config.surge, this.#opts.calendar, now, 3).map((w) => ({
                  day: w.day,
                  warm_from: iso(w.warmFrom),
                  opens_at: iso(w.opensAt),
                  closes_at: iso(w.closesAt),
                  min_replicas: w.minReplicas,
                })),
          last_check: e.lastCheck ?? null,
        },
      }
    })
  }

  #registerMetrics(registry: Registry): void {
    const entries = this.#entries
    new Gauge({
      name: 'sovra_pool_replicas',
      help: 'Replicas per pool and state',
      labelNames: ['pool', 'state'] as const,
      registers: [registry],
      collect() {
        this.reset()
        for (const e of entries) {
          for (const state of ['starting', 'ready', 'draining'] as const)
            this.set(
              { pool: e.config.name, state },
              [...e.remote, ...e.replicas].filter((r) => r.state === state).length,
            )
        }
      },
    })
    new Gauge({
      name: 'sovra_pool_replicas_desired',
      help: 'Replicas the scaler wants per pool',
      labelNames: ['pool'] as const,
      registers: [registry],
      collect() {
        for (const e of entries) this.set({ pool: e.config.name }, e.last?.target ?? 0)
      },
    })
    new Gauge({
      name: 'sovra_pool_outstanding',
      help: 'Requests the router has in flight per pool',
      labelNames: ['pool'] as const,
      registers: [registry],
      collect() {
        for (const e of entries)
          this.set(
            { pool: e.config.name },
            [...e.remote, ...e.replicas].reduce((n, r) => n + r.outstanding, 0),
          )
      },
    })
    new Gauge({
      name: 'sovra_pool_surge_check_ok',
      help: '1 when the last surge readiness check met the p95 budget, 0 when not',
      labelNames: ['pool'] as const,
      registers: [registry],
      collect() {
        for (const e of entries) if (e.lastCheck) this.set({ pool: e.config.name }, e.lastCheck.ok ? 1 : 0)
      },
    })
    new Gauge({
      name: 'sovra_pool_surge_check_p95_seconds',
      help: 'p95 latency measured by the last surge readiness check',
      labelNames: ['pool'] as const,
      registers: [registry],
      collect() {
        for (const e of entries) if (e.lastCheck) this.set({ pool: e.config.name }, e.lastCheck.p95_ms / 1000)
      },
    })
  }

  /** Stops every local replica (draining in-flight work first). */
  async close(drainMs = 10_000): Promise<void> {
    this.#closed = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    await this.#ticking?.catch(() => undefined)
    await Promise.all(this.#entries.flatMap((e) => e.replicas.map((r) => r.stop(drainMs))))
  }
}

async function pollStatus(r: Replica): Promise<void> {
  try {
    const res = await fetch(`${r.url}/v1/status`, { signal: AbortSignal.timeout(1000) })
    if (res.ok) r.status = (await res.json()) as ReplicaStatus
  } catch {
    // A replica that cannot answer its status keeps the last one; a dead one is caught by its exit handler.
  }
}

/**
 * The default spawner: a `sovra pool serve` child process per replica.
 * @param base config file, env, state folder and where replica log lines go
 */
export function localSpawner(
  base: Omit<LocalReplicaOptions, 'id' | 'pool' | 'onSettled'>,
): PoolManagerOptions['spawn'] {
  return (pool, id, onSettled) => new LocalReplica({ ...base, id, pool: pool.name, onSettled: (r) => onSettled(r) })
}
