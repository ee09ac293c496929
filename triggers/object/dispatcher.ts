import type { ObjectEvent } from '../../runtime/core/handlers.ts'
import { SYSTEM_CLOCK, type Clock } from '../cron/clock.ts'
import type { EventQueue, QueuedEvent } from './queue.ts'

/** Default retries after the first attempt before an event is dead-lettered. */
export const DEFAULT_MAX_RETRIES = 5

/** Options for {@link ObjectDispatcher}. */
export interface DispatcherOptions {
  queue: EventQueue
  /** Runs a function's `object` handler once. */
  run(fn: string, event: ObjectEvent): Promise<{ ok: boolean; error?: string | undefined }>
  /** Retries for one event of a function (default {@link DEFAULT_MAX_RETRIES}): its triggers may differ per event. */
  maxRetries?: (fn: string, event: ObjectEvent) => number
  /** First retry delay; doubles per attempt, plus up to 20% jitter (default 1000 ms). */
  backoffMs?: number
  /** Events handled at once across all objects (default 8). */
  concurrency?: number
  /** How often to look for due retries when nothing else wakes it (default 250 ms). */
  pollMs?: number
  clock?: Clock
  /** Each finished attempt, for logs. */
  onAttempt?(item: QueuedEvent, outcome: 'done' | 'retry' | 'dead', error: string | undefined): void
  /** The queue itself failed (the event stays claimed and is recovered at the next start). */
  onError?(error: unknown): void
}

/**
 * Delivers queued object events to functions: claims due events (oldest first, one at a time per object), runs
 * the `object` handler, and completes, retries with backoff and jitter, or dead-letters each one.
 *
 * @example
 * const d = new ObjectDispatcher({ queue, run: (fn, event) => pools.get(fn).run('object', { event }) })
 * await d.start()
 */
export class ObjectDispatcher {
  readonly #opts: DispatcherOptions
  readonly #clock: Clock
  #inflight = 0
  #running = false
  #timer: unknown
  #pumping: Promise<void> | undefined
  #again = false
  #idle: Array<() => void> = []

  /** @param options the queue, the runner and retry settings */
  constructor(options: DispatcherOptions) {
    this.#opts = options
    this.#clock = options.clock ?? SYSTEM_CLOCK
  }

  /** Puts events interrupted by a crash back in line, then starts delivering. */
  async start(): Promise<void> {
    await this.#opts.queue.recover()
    this.#running = true
    this.wake()
  }

  /** Looks for work now (after an enqueue). */
  wake(): void {
    if (!this.#running) return
    if (this.#pumping !== undefined) {
      this.#again = true
      return
    }
    this.#pumping = this.#pump().finally(() => {
      this.#pumping = undefined
      if (this.#again) {
        this.#again = false
        this.wake()
      }
    })
  }

  /** Stops claiming; resolves when the events in hand are finished (or after `graceMs`). */
  async stop(graceMs = 10_000): Promise<void> {
    this.#running = false
    this.#clock.clearTimer(this.#timer)
    await this.#pumping
    if (this.#inflight === 0) return
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, graceMs)
      this.#idle.push(() => {
        clearTimeout(t)
        resolve()
      })
    })
  }

  async #pump(): Promise<void> {
    this.#clock.clearTimer(this.#timer)
    const room = (this.#opts.concurrency ?? 8) - this.#inflight
    if (room > 0) {
      try {
        const items = await this.#opts.queue.claim(this.#clock.now(), room)
        for (const item of items) void this.#deliver(item)
      } catch (e) {
        this.#opts.onError?.(e)
      }
    }
    if (this.#running) this.#timer = this.#clock.setTimer(() => this.wake(), this.#opts.pollMs ?? 250)
  }

  async #deliver(item: QueuedEvent): Promise<void> {
    this.#inflight++
    let outcome: 'done' | 'retry' | 'dead' = 'done'
    let error: string | undefined
    try {
      let result: { ok: boolean; error?: string | undefined }
      try {
        result = await this.#opts.run(item.function, item.event)
      } catch (e) {
        result = { ok: false, error: (e as Error).message }
      }
      if (result.ok) {
        await this.#opts.queue.complete(item.id)
      } else {
        error = result.error ?? 'the object handler failed'
        const max = this.#opts.maxRetries?.(item.function, item.event) ?? DEFAULT_MAX_RETRIES
        if (item.attempts > max) {
          outcome = 'dead'
          await this.#opts.queue.fail(item.id, error, undefined)
        } else {
          outcome = 'retry'
          const base = (this.#opts.backoffMs ?? 1000) * 2 ** (item.attempts - 1)
          await this.#opts.queue.fail(item.id, error, this.#clock.now() + base + Math.floor(Math.random() * base * 0.2))
        }
      }
      this.#opts.onAttempt?.(item, outcome, error)
    } catch (e) {
      this.#opts.onError?.(e)
    } finally {
      this.#inflight--
      if (this.#inflight === 0) for (const f of this.#idle.splice(0)) f()
      // A finished event may unblock the next one of the same object.
      this.wake()
    }
  }
}
