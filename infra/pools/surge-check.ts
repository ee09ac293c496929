import type { PoolConfig } from '../../runtime/config/pools.ts'
import type { SurgeWindow } from './calendar.ts'
import type { Replica } from './replica.ts'

/** The result of a synthetic readiness check before a surge window opens. */
export interface SurgeCheck {
  window_day: string
  opens_at: string
  checked_at: string
  replicas: number
  requests: number
  failures: number
  p95_ms: number
  budget_ms: number
  ok: boolean
}

const REQUESTS_PER_REPLICA = 4

/**
 * Sends a few synthetic requests of the pool's own kind (a short chat, or one embedding/classification) to every
 * ready replica, `target_inflight` at a time, and compares the p95 with the pool's budget. Any failure fails it.
 * @param pool the pool
 * @param replicas its ready replicas
 * @param window the surge window being prepared
 * @param now the clock
 */
export async function runSurgeCheck(
  pool: PoolConfig,
  replicas: readonly Replica[],
  window: SurgeWindow,
  now: () => number,
): Promise<SurgeCheck> {
  const jobs = replicas.flatMap((r) => Array.from({ length: REQUESTS_PER_REPLICA }, () => r))
  const latencies: number[] = []
  let failures = 0
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const r = jobs[next++] as Replica
      const op = r.operations[0] ?? 'chat'
      const path = op === 'chat' ? '/v1/chat/completions' : op === 'embed' ? '/v1/embeddings' : '/v1/classify'
      const body =
        op === 'chat'
          ? {
              messages: [{ role: 'user', content: 'surge readiness check' }],
              max_tokens: 8,
              temperature: 0,
              class: pool.class,
              tier: pool.tier,
            }
          : { input: ['surge readiness check'], class: pool.class, tier: pool.tier }
      const t0 = performance.now()
      try {
        const res = await fetch(`${r.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(pool.p95BudgetMs * 4),
        })
        await res.arrayBuffer()
        if (!res.ok) failures++
      } catch {
        failures++
      }
      latencies.push(performance.now() - t0)
    }
  }
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(jobs.length, pool.targetInflight * replicas.length)) }, worker),
  )
  latencies.sort((a, b) => a - b)
  const p95 =
    latencies.length === 0
      ? Infinity
      : (latencies[Math.min(latencies.length - 1, Math.ceil(0.95 * latencies.length) - 1)] as number)
  return {
    window_day: window.day,
    opens_at: new Date(window.opensAt).toISOString(),
    checked_at: new Date(now()).toISOString(),
    replicas: replicas.length,
    requests: jobs.length,
    failures,
    p95_ms: Math.round(p95),
    budget_ms: pool.p95BudgetMs,
    ok: failures === 0 && jobs.length > 0 && p95 <= pool.p95BudgetMs,
  }
}
