/** What a window of outcomes says: how many, how many failed (status >= 500), and the latency p95. */
export interface OutcomeSummary {
  requests: number
  errors: number
  p95Ms: number | undefined
}

/**
 * The last `max` outcomes (time, status, latency) in a ring buffer: recording is O(1) on the request path; reading a
 * window (a scaler's p95, a canary check) walks the buffer. Shared by pool replicas, the host's versions and the
 * gateway.
 */
export class OutcomeWindow {
  readonly #at: Float64Array
  readonly #ms: Float64Array
  readonly #status: Uint16Array
  #next = 0
  #size = 0

  /**
   * @param max outcomes kept at most
   * @param now the clock
   */
  constructor(
    private readonly max = 20_000,
    private readonly now: () => number = Date.now,
  ) {
    this.#at = new Float64Array(max)
    this.#ms = new Float64Array(max)
    this.#status = new Uint16Array(max)
  }

  /**
   * Records one outcome.
   * @param ms its latency
   * @param status its HTTP status (default 200)
   */
  add(ms: number, status = 200): void {
    this.#at[this.#next] = this.now()
    this.#ms[this.#next] = ms
    this.#status[this.#next] = status
    this.#next = (this.#next + 1) % this.max
    if (this.#size < this.max) this.#size++
  }

  /**
   * Requests, errors and the p95 (nearest rank) of the last `windowMs`.
   * @param windowMs how far back
   */
  summary(windowMs: number): OutcomeSummary {
    const since = this.now() - windowMs
    const latencies: number[] = []
    let errors = 0
    for (let i = 0; i < this.#size; i++) {
      if ((this.#at[i] as number) < since) continue
      latencies.push(this.#ms[i] as number)
      if ((this.#status[i] as number) >= 500) errors++
    }
    latencies.sort((a, b) => a - b)
    return {
      requests: latencies.length,
      errors,
      p95Ms: latencies.length === 0 ? undefined : latencies[Math.ceil(0.95 * latencies.length) - 1],
    }
  }
}

/** One window per key (a version, an action), created on first use. */
export class OutcomeWindows {
  readonly #windows = new Map<string, OutcomeWindow>()

  /** @param max outcomes kept per key */
  constructor(private readonly max = 20_000) {}

  /**
   * Records one outcome for a key.
   * @param key the version or action
   * @param ms latency
   * @param status HTTP status
   */
  add(key: string, ms: number, status: number): void {
    let w = this.#windows.get(key)
    if (w === undefined) this.#windows.set(key, (w = new OutcomeWindow(this.max)))
    w.add(ms, status)
  }

  /**
   * A key's summary over the last `windowS` seconds (empty when never seen).
   * @param key the version or action
   * @param windowS the window
   */
  summary(key: string, windowS: number): OutcomeSummary {
    return this.#windows.get(key)?.summary(windowS * 1000) ?? { requests: 0, errors: 0, p95Ms: undefined }
  }
}
