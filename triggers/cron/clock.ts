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

  /**
   * Moves time forward, firing due timers in order.
   * @param ms how far
   */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms
    for (;;) {
      await settle()
      this.#timers.sort((a, b) => a.at - b.at || a.id - b.id)
      const next = this.#timers[0]
      if (next === undefined || next.at > end) break
      this.#timers.shift()
      this.#now = Math.max(this.#now, next.at)
      next.fn()
    }
    this.#now = end
    await settle()
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r))
}
