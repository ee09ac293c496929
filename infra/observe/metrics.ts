import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { BoundHistogram, type HistogramSeries } from './bound-histogram.ts'
import type { InvocationRecord, IsolateEvent, PoolStats } from '../../runtime/isolate/pool.ts'
import type { HostMetrics } from '../../runtime/hosts/local/observer.ts'

/** Latency buckets in seconds: fine below 100 ms, where p95 budgets for interactive work live. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/**
 * Versions per function whose invocation series are kept. A function serves a few at once (stable, a canary, pins),
 * but `sovra dev` makes a new working-tree version on every save: past this many, the series of the version used
 * least recently are dropped, so the label's cardinality stays bounded.
 */
export const MAX_VERSIONS_PER_FUNCTION = 8

/** The series one label set of an invocation feeds, bound once. */
interface CallSeries {
  key: string
  count: {
    labels: { function: string; version: string; trigger: string; status: string; outcome: string }
    pending: number
  }
  latency: HistogramSeries
  queue: HistogramSeries
  /** When it was last used (a tick, not a time): the least recently used version is dropped first. */
  seen: number
}

/**
 * Creates the Prometheus metrics of a host on its own registry (prom-client): invocations by function, version,
 * trigger, status and outcome; latency and queue histograms by version (and status); isolate lifecycle; live pool
 * gauges read at scrape time. `version` is the invocation's version: the version id under the control plane, else
 * the working tree's bundle version (12 hex of its sha256), at most {@link MAX_VERSIONS_PER_FUNCTION} per function.
 * @param stats reads the live pool numbers when scraped
 * @example
 * const metrics = createPromMetrics(() => host.stats())
 * const { contentType, body } = await metrics.render()
 */
export function createPromMetrics(
  stats: () => PoolStats[] = () => [],
): HostMetrics & { registry: Registry; setStats(fn: () => PoolStats[]): void } {
  const registry = new Registry()
  // prom-client's default metrics are already named process_* / nodejs_*: the prefix is sovra_ alone (it used to
  // read sovra_process_process_cpu_seconds_total).
  collectDefaultMetrics({ register: registry, prefix: 'sovra_' })
  let read = stats
  // Invocations are counted in plain numbers per label set and added to the counter when it is scraped: a
  // prom-client child validates and hashes its labels on every inc (see bound-histogram.ts).
  const counts = new Set<CallSeries['count']>()
  const invocations = new Counter({
    name: 'sovra_invocations_total',
    help: 'Function invocations, by function, version, trigger, HTTP status and outcome',
    labelNames: ['function', 'version', 'trigger', 'status', 'outcome'] as const,
    registers: [registry],
    collect() {
      for (const c of counts) {
        if (c.pending === 0) continue
        this.inc(c.labels, c.pending)
        c.pending = 0
      }
    },
  })
  const duration = new BoundHistogram({
    name: 'sovra_invocation_duration_seconds',
    help: 'Invocation latency from admission to completion, by function, version, trigger and status',
    labelNames: ['function', 'version', 'trigger', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  })
  const queued = new BoundHistogram({
    name: 'sovra_invocation_queue_seconds',
    help: 'Time an invocation waited for a free isolate, by function and version',
    labelNames: ['function', 'version'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  })
  const isolateEvents = new Counter({
    name: 'sovra_isolate_events_total',
    help: 'Isolate lifecycle events (spawn, ready, exit with reason, init-error)',
    labelNames: ['function', 'event', 'reason'] as const,
    registers: [registry],
  })
  const isolateStart = new Histogram({
    name: 'sovra_isolate_start_seconds',
    help: 'Time from spawning an isolate to its bundle being loaded and ready',
    labelNames: ['function'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  const gauge = (name: string, help: string, pick: (s: PoolStats) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['function'] as const,
      registers: [registry],
      collect() {
        this.reset()
        for (const s of read()) this.set({ function: s.function }, pick(s))
      },
    })
  }
  gauge('sovra_isolates', 'Isolates alive (starting, ready or retiring)', (s) => s.isolates)
  gauge('sovra_isolates_ready', 'Isolates ready on the current bundle', (s) => s.ready)
  gauge('sovra_inflight', 'Invocations running in isolates', (s) => s.inflight)
  gauge('sovra_queue_depth', 'Invocations waiting for an isolate', (s) => s.queued)

  let readEvents: (() => Promise<Record<string, number>>) | undefined
  new Gauge({
    name: 'sovra_object_events',
    help: 'Object events in the durable queue, by status (pending, running, done, dead)',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      if (readEvents === undefined) return
      this.reset()
      for (const [status, n] of Object.entries(await readEvents())) this.set({ status }, n)
    },
  })

  // The series of each label set, bound once (one map lookup per invocation); per function, the label sets of each
  // version, so a version's series can be dropped together.
  const perCall = new Map<string, CallSeries>()
  const queueSeries = new Map<string, HistogramSeries>()
  const byFunction = new Map<string, Map<string, CallSeries[]>>()
  let tick = 0
  const drop = (fn: string, version: string, list: readonly CallSeries[]): void => {
    for (const b of list) {
      perCall.delete(b.key)
      counts.delete(b.count)
      invocations.remove(b.count.labels)
      duration.unbind(b.latency)
    }
    const qKey = `${fn}\u0000${version}`
    const queue = queueSeries.get(qKey)
    if (queue !== undefined) queued.unbind(queue)
    queueSeries.delete(qKey)
  }
  /** The versions of a function, with room for `version` (dropping the least recently used one when full). */
  const versionsOf = (fn: string, version: string): CallSeries[] => {
    let versions = byFunction.get(fn)
    if (versions === undefined) {
      versions = new Map()
      byFunction.set(fn, versions)
    }
    let list = versions.get(version)
    if (list !== undefined) return list
    if (versions.size >= MAX_VERSIONS_PER_FUNCTION) {
      let oldest: [string, CallSeries[]] | undefined
      let oldestSeen = Infinity
      for (const entry of versions) {
        const seen = Math.max(...entry[1].map((b) => b.seen))
        if (seen < oldestSeen) [oldest, oldestSeen] = [entry, seen]
      }
      if (oldest !== undefined) {
        versions.delete(oldest[0])
        drop(fn, oldest[0], oldest[1])
      }
    }
    list = []
    versions.set(version, list)
    return list
  }
  const bound = (r: InvocationRecord): CallSeries => {
    const { function: fn, version, trigger } = r.invocation
    const key = `${fn}\u0000${version}\u0000${trigger}\u0000${r.status}\u0000${r.outcome}`
    let b = perCall.get(key)
    if (b === undefined) {
      const list = versionsOf(fn, version)
      const status = String(r.status)
      const count = { labels: { function: fn, version, trigger, status, outcome: r.outcome }, pending: 0 }
      counts.add(count)
      const qKey = `${fn}\u0000${version}`
      let queue = queueSeries.get(qKey)
      if (queue === undefined) {
        queue = queued.bind({ function: fn, version })
        queueSeries.set(qKey, queue)
      }
      b = { key, count, latency: duration.bind({ function: fn, version, trigger, status }), queue, seen: 0 }
      list.push(b)
      perCall.set(key, b)
    }
    return b
  }

  return {
    registry,
    setStats(fn) {
      read = fn
    },
    setEventCounts(fn) {
      readEvents = fn
    },
    onInvocation(r: InvocationRecord) {
      const b = bound(r)
      b.seen = ++tick
      b.count.pending++
      b.latency.observe(r.durationMs / 1000)
      b.queue.observe(r.queuedMs / 1000)
    },
    onIsolate(e: IsolateEvent) {
      isolateEvents.inc({ function: e.function, event: e.event, reason: e.reason ?? '' })
      if (e.event === 'ready' && e.startMs !== undefined)
        isolateStart.observe({ function: e.function }, e.startMs / 1000)
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() }
    },
  }
}
