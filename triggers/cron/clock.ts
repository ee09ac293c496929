/** Time as the scheduler sees it: real in production, driven by tests (never real minutes). */
export interface Clock {
  now(): number
  setTimer(fn: () => void, ms: number): unknown
  clearTimer(handle: unknown): void
}

/** The real clock. Timers are unref'd: a schedule alone does not keep the process alive. */
export const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, Math.min(ms, 2 ** 31 - 1)).unref(),
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
}

/**
 * A clock tests move by hand: `advance(ms)` runs every timer that falls due, in time order, letting promises
 * settle between them.
 * @param start the initial time (epoch ms)
 */
export class ManualClock implements Clock {
  #now: number
  #timers: Array<{ at: number; fn: () => void; id: number }> = []
  #nextId = 1

  constructor(start: number) {
    this.#now = start
  }

  now(): number {
    return this.#now
  }

  setTimer(fn: () => void, ms: number): unknown {
    const id = this.#nextId++
    this.#timers.push({ at: this.#now + Math.max(0, ms), fn, id })
    return id
  }

  clearTimer(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle)
  }

  /** Timers waiting. */
  get pending(): number {
    return this.#timers.length
  }

  /** When the next timer fires (epoch ms), or undefined when none is set. */
  nextTimer(): number | undefined {
    return this.#timers.reduce<number | undefined>(
      (min, t) => (min === undefined || t.at < min ? t.at : min),
      undefined,
    )
  }

  /**
   * Moves time forward, firing due timers in order.
   * @param ms how far
   */
  async advance(ms: number): Promise<void> {
    await settle()
    await this.advanceTo(this.#now + ms, settle)
    await settle()
  }

  /**
   * Moves time to `to`, firing every timer due by then in time order (ties in the order they were set), and
   * awaiting `afterEach` after each one, so timers the work sets (retries) fire in the same move when due. Time never
   * moves back.
   * @param to the target time, epoch ms
   * @param afterEach waits for the work a timer started (default: lets promises settle)
   */
  async advanceTo(to: number, afterEach: () => Promise<void> = settle): Promise<void> {
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at || a.id - b.id)
      const next = this.#timers[0]
      if (next === undefined || next.at > to) break
      this.#timers.shift()
      this.#now = Math.max(this.#now, next.at)
      next.fn()
      await afterEach()
    }
    this.#now = Math.max(this.#now, to)
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r))
}
