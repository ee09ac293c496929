import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

import type { WorkClass } from './admission.ts'

/** Seconds buckets for inference: from 5 ms to two minutes (batch work and long generations). */
export const INFERENCE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

/** The metrics one replica exports on `/metrics`, by pool and class. */
export interface PoolMetrics {
  registry: Registry
  observe(
    cls: WorkClass,
    op: string,
    status: number,
    t: { queueS: number; ttftS?: number; totalS: number; tokensIn: number; tokensOut: number },
  ): void
  render(): Promise<{ contentType: string; body: string }>
}

/**
 * Creates a replica's Prometheus metrics (prom-client, own registry): queue time, time to first token and
 * end-to-end latency histograms, token counters, requests by status, and live gauges for busy slots and queue depth.
 * @param labels the pool and replica every series carries, and the model digest for `sovra_pool_model_info`
 * @param live reads busy slots and queue depth at scrape time
 */
export function createPoolMetrics(
  labels: { pool: string; replica: string; digest: string; engine: string; model: string },
  live: () => { busy: number; slots: number; depth: Record<WorkClass, number>; ready: boolean },
): PoolMetrics {
  const registry = new Registry()
  registry.setDefaultLabels({ pool: labels.pool, replica: labels.replica })
  collectDefaultMetrics({ register: registry, prefix: 'sovra_pool_' })
  const h = (name: string, help: string): Histogram<'class' | 'op'> =>
    new Histogram({
      name,
      help,
      labelNames: ['class', 'op'] as const,
      buckets: INFERENCE_BUCKETS,
      registers: [registry],
    })
  const queue = h('sovra_pool_queue_seconds', 'Time a request waited for a slot, by class')
  const ttft = h('sovra_pool_time_to_first_token_seconds', 'Time from arrival to the first generated token (chat)')
  const total = h('sovra_pool_request_seconds', 'End-to-end request latency, by class')
  const requests = new Counter({
    name: 'sovra_pool_requests_total',
    help: 'Requests by class, operation and HTTP status',
    labelNames: ['class', 'op', 'status'] as const,
    registers: [registry],
  })
  const tokens = new Counter({
    name: 'sovra_pool_tokens_total',
    help: 'Tokens in (prompt) and out (generated), by class',
    labelNames: ['class', 'direction'] as const,
    registers: [registry],
  })
  new Gauge({
    name: 'sovra_pool_slots_busy',
    help: 'Slots running a request',
    registers: [registry],
    collect() {
      this.set(live().busy)
    },
  })
  new Gauge({
    name: 'sovra_pool_slots',
    help: 'Slots of this replica',
    registers: [registry],
    collect() {
      this.set(live().slots)
    },
  })
  new Gauge({
    name: 'sovra_pool_ready',
    help: '1 when the model is loaded and warm',
    registers: [registry],
    collect() {
      this.set(live().ready ? 1 : 0)
    },
  })
  new Gauge({
    name: 'sovra_pool_queue_depth',
    help: 'Requests waiting for a slot, by class',
    labelNames: ['class'] as const,
    registers: [registry],
    collect() {
      const d = live().depth
      this.set({ class: 'interactive' }, d.interactive)
      this.set({ class: 'batch' }, d.batch)
    },
  })
  const info = new Gauge({
    name: 'sovra_pool_model_info',
    help: 'The model this replica serves (value 1)',
    labelNames: ['engine', 'model', 'sha256'] as const,
    registers: [registry],
  })
  info.set({ engine: labels.engine, model: labels.model, sha256: labels.digest }, 1)
  return {
    registry,
    observe(cls, op, status, t) {
      requests.inc({ class: cls, op, status: String(status) })
      if (status >= 400) return
      queue.observe({ class: cls, op }, t.queueS)
      total.observe({ class: cls, op }, t.totalS)
      if (t.ttftS !== undefined) ttft.observe({ class: cls, op }, t.ttftS)
      tokens.inc({ class: cls, direction: 'in' }, t.tokensIn)
      if (t.tokensOut > 0) tokens.inc({ class: cls, direction: 'out' }, t.tokensOut)
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() }
    },
  }
}
