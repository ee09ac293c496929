import type { Clock } from '../../triggers/cron/clock.ts'

/**
 * The clock a test host's cron scheduler runs by: time moves only when the test moves it. Unlike ManualClock
 * (triggers/cron/clock.ts), moving it waits for the work each timer starts (a cron run in an isolate, its retries)
 * before firing the next one, so what runs, and in which order, does not depend on how busy the machine is.
 */
export class TestClock implements Clock {
  #now: number
  #timers: Array<{ at: number; fn: () => void; id: number }> = []
  #nextId = 1

  /** @param start the initial time, epoch ms */
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

  /** When the next timer fires (epoch ms), or undefined when none is set. */
  nextTimer(): number | undefined {
    return this.#timers.reduce<number | undefined>(
      (min, t) => (min === undefined || t.at < min ? t.at : min),
      undefined,
    )
  }

  /**
   * Moves time to `to`, firing every timer due by then in time order (ties in the order they were set), and
   * awaiting `afterEach` after each one, so timers the work sets (retries) fire in the same move when due.
   * Time never moves back.
   * @param to the target time, epoch ms
   * @param afterEach waits for the work a timer started
   */
  async advanceTo(to: number, afterEach: () => Promise<void>): Promise<void> {
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
