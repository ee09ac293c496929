/** Per-function thresholds for a canary (`rollout = { ... }` in config). */
export interface RolloutThresholds {
  maxErrorRate: number
  maxP95Ms: number
  minRequests: number
  windowS: number
}

/** Defaults when a function says nothing (the example). */
export const DEFAULT_ROLLOUT: RolloutThresholds = { maxErrorRate: 0.02, maxP95Ms: 800, minRequests: 200, windowS: 300 }

/** What one version did over the window. */
export interface WindowStats {
  requests: number
  errors: number
  p95Ms: number | undefined
}

/** The controller's verdict on a canary. */
export interface Verdict {
  verdict: 'rollback' | 'healthy' | 'insufficient'
  reason: string
}

/**
 * Compares a canary with stable over the same window: too few canary requests -> wait; an error rate over
 * `maxErrorRate` and above stable's, or a p95 over `maxP95Ms` and above stable's -> roll back; else healthy.
 * @param t the thresholds
 * @param stable stable's numbers on the window
 * @param canary the canary's numbers on the window
 */
export function judgeCanary(t: RolloutThresholds, stable: WindowStats, canary: WindowStats): Verdict {
  if (canary.requests < t.minRequests)
    return {
      verdict: 'insufficient',
      reason: `${canary.requests} canary requests in ${t.windowS} s, fewer than min_requests ${t.minRequests}`,
    }
  const rate = canary.errors / canary.requests
  const stableRate = stable.requests === 0 ? 0 : stable.errors / stable.requests
  if (rate > t.maxErrorRate && rate > stableRate) {
    return {
      verdict: 'rollback',
      reason: `canary error rate ${(rate * 100).toFixed(2)}% over max_error_rate ${(t.maxErrorRate * 100).toFixed(2)}% (stable ${(stableRate * 100).toFixed(2)}%) on ${canary.requests} requests`,
    }
  }
  if (
    canary.p95Ms !== undefined &&
    canary.p95Ms > t.maxP95Ms &&
    (stable.p95Ms === undefined || canary.p95Ms > stable.p95Ms)
  ) {
    return {
      verdict: 'rollback',
      reason: `canary p95 ${Math.round(canary.p95Ms)} ms over max_p95_ms ${t.maxP95Ms} (stable ${stable.p95Ms === undefined ? '-' : Math.round(stable.p95Ms)} ms)`,
    }
  }
  return {
    verdict: 'healthy',
    reason: `canary error rate ${(rate * 100).toFixed(2)}%, p95 ${canary.p95Ms === undefined ? '-' : Math.round(canary.p95Ms)} ms within thresholds`,
  }
}
