/**
 * Latencies of the last `windowMs` (at most `max` samples), for the p95 a scaler compares with a pool's budget.
 * Histograms are for Prometheus; this is the replica's own quick answer.
 */
export class LatencyWindow {
  private samples: Array<{ at: number; ms: number }> = []

  /**
   * @param windowMs how far back samples count
   * @param max samples kept at most
   * @param now the clock
   */
  constructor(private readonly windowMs = 60_000, private readonly max = 2000, private readonly now: () => number = Date.now) {}

  /** Records one latency. */
  add(ms: number): void {
    this.samples.push({ at: this.now(), ms })
    if (this.samples.length > this.max) this.samples.splice(0, this.samples.length - this.max)
  }

  /** Number of samples in the window. */
  count(): number {
    this.trim()
    return this.samples.length
  }

  /**
   * The q-quantile (nearest rank) of the window, or undefined when empty.
   * @param q between 0 and 1
   */
  quantile(q: number): number | undefined {
    this.trim()
    if (this.samples.length === 0) return undefined
    const sorted = this.samples.map((s) => s.ms).sort((a, b) => a - b)
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
  }

  private trim(): void {
    const cutoff = this.now() - this.windowMs
    let i = 0
    while (i < this.samples.length && (this.samples[i]?.at ?? 0) < cutoff) i++
    if (i > 0) this.samples.splice(0, i)
  }
}
