import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { BoundHistogram, type HistogramSeries } from './bound-histogram.ts'
import type { InvocationRecord, IsolateEvent, PoolStats } from '../../runtime/isolate/pool.ts'
import type { HostMetrics } from '../../runtime/hosts/local/observer.ts'

/** Latency buckets in seconds: fine below 100 ms, where p95 budgets for interactive work live. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/**
 * Creates the Prometheus metrics of a host on its own registry (prom-client): invocations by function, trigger,
 * status and outcome; a latency histogram by status; isolate lifecycle; live pool gauges read at scrape time.
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
  const counts: Array<{
    labels: { function: string; trigger: string; status: string; outcome: string }
    pending: number
  }> = []
  new Counter({
    name: 'sovra_invocations_total',
    help: 'Function invocations, by function, trigger, HTTP status and outcome',
    labelNames: ['function', 'trigger', 'status', 'outcome'] as const,
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
    help: 'Invocation latency from admission to completion, by function, trigger and status',
    labelNames: ['function', 'trigger', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  })
  const queued = new BoundHistogram({
    name: 'sovra_invocation_queue_seconds',
    help: 'Time an invocation waited for a free isolate',
    labelNames: ['function'] as const,
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

  // The series of each label set, bound once (one map lookup per invocation).
  const perCall = new Map<string, { count: { pending: number }; latency: HistogramSeries; queue: HistogramSeries }>()
  const queueSeries = new Map<string, HistogramSeries>()
  const bound = (r: InvocationRecord) => {
    const key = `${r.invocation.function}\u0000${r.invocation.trigger}\u0000${r.status}\u0000${r.outcome}`
    let b = perCall.get(key)
    if (b === undefined) {
      const fn = r.invocation.function
      const status = String(r.status)
      const count = { labels: { function: fn, trigger: r.invocation.trigger, status, outcome: r.outcome }, pending: 0 }
      counts.push(count)
      let queue = queueSeries.get(fn)
      if (queue === undefined) {
        queue = queued.bind({ function: fn })
        queueSeries.set(fn, queue)
      }
      b = { count, latency: duration.bind({ function: fn, trigger: r.invocation.trigger, status }), queue }
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
