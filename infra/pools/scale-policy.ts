import type { PoolConfig } from '../../runtime/config/pools.ts'

/** What the scaler observed of one pool at one tick. */
export interface ScaleObservation {
  now: number
  /** Replicas that count as capacity: starting or ready (not draining). */
  current: number
  /** Requests the router has in flight to this pool. */
  outstanding: number
  /** Requests waiting in replicas' queues. */
  queued: number
  /** The worst replica p95 (ms) of the pool's class over the replicas' windows, if any samples. */
  p95Ms: number | undefined
  /** The surge floor in force (warm-up or open window), if any. */
  surgeMin: number | undefined
}

/** Timers the policy keeps between ticks (scale-up and scale-down delays). */
export interface ScaleMemory {
  upSince?: number | undefined
  downSince?: number | undefined
}

/** A scaling decision. */
export interface ScaleDecision {
  /** Replicas wanted now (after delays). */
  target: number
  /** What the load alone asks for (before delays). */
  desired: number
  reason: string
}

/**
 * Decides how many replicas a pool should have: at least `min_replicas` (raised by an active surge window),
 * enough for `target_inflight` per replica over in-flight plus queued work, one more while the observed p95 is over
 * `p95_budget_ms` with work present, at most `max_replicas`. Floors apply at once; load-driven scale-up waits
 * `scale_up_delay_s` of sustained demand, and scale-down `scale_down_delay_s` of sustained slack, one replica at a time.
 * @param pool the pool's config
 * @param o what was observed
 * @param memory the timers from the previous tick (updated in place)
 */
export function decideReplicas(pool: PoolConfig, o: ScaleObservation, memory: ScaleMemory): ScaleDecision {
  const floor = Math.min(pool.maxReplicas, Math.max(pool.minReplicas, o.surgeMin ?? 0))
  const work = o.outstanding + o.queued
  let desired = Math.max(floor, Math.ceil(work / pool.targetInflight))
  let reason = o.surgeMin !== undefined && o.surgeMin > pool.minReplicas ? 'surge window' : 'load'
  if (o.p95Ms !== undefined && o.p95Ms > pool.p95BudgetMs && work > 0) {
    desired = Math.max(desired, o.current + 1)
    reason = `p95 ${Math.round(o.p95Ms)} ms over budget ${pool.p95BudgetMs} ms`
  }
  desired = Math.min(pool.maxReplicas, desired)
  if (o.current < floor) {
    memory.upSince = undefined
    memory.downSince = undefined
    return {
      target: Math.max(floor, Math.min(desired, o.current)),
      desired,
      reason: reason === 'load' ? 'min_replicas' : reason,
    }
  }
  if (desired > o.current) {
    memory.downSince = undefined
    memory.upSince ??= o.now
    if (o.now - memory.upSince >= pool.scaleUpDelayS * 1000) {
      memory.upSince = undefined
      return { target: desired, desired, reason }
    }
    return { target: o.current, desired, reason: `${reason} (waiting scale_up_delay_s)` }
  }
  memory.upSince = undefined
  if (desired < o.current) {
    memory.downSince ??= o.now
    if (o.now - memory.downSince >= pool.scaleDownDelayS * 1000) {
      memory.downSince = o.now
      return { target: o.current - 1, desired, reason: 'idle' }
    }
    return { target: o.current, desired, reason: 'idle (waiting scale_down_delay_s)' }
  }
  memory.downSince = undefined
  return { target: o.current, desired, reason: 'steady' }
}
