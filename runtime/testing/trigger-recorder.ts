import type { ObjectEvent } from '../core/index.ts'
import type { CronAttempt } from '../hosts/local/crons.ts'
import type { EventQueue, QueuedEvent } from '../../triggers/object/queue.ts'

/** How one attempt of a scheduled run ended. */
export interface CronOutcome {
  trigger: 'cron'
  function: string
  cron: string
  /** When the run was due (the test clock's time), epoch ms: the handler's `controller.scheduledTime`. */
  scheduledTime: number
  /** 1 for the first attempt, then one more per retry. */
  attempt: number
  ok: boolean
  /** What the handler threw (message and stack), when it failed. */
  error: string | undefined
  /** The handler called `controller.noRetry()`. */
  noRetry: boolean
}

/** How one delivery attempt of an object event ended. */
export interface ObjectOutcome {
  trigger: 'object'
  function: string
  event: ObjectEvent
  /** 1 for the first attempt, then one more per retry. */
  attempt: number
  ok: boolean
  /** What the handler threw (message and stack), when it failed. */
  error: string | undefined
  /** `done` (handled), `retry` (failed; retried after a backoff) or `dead` (failed with no retries left). */
  next: 'done' | 'retry' | 'dead'
}

/** One attempt of a trigger the test host ran, in the order they ended. */
export type TriggerOutcome = CronOutcome | ObjectOutcome

/**
 * Records what a test host's triggers did: each cron attempt (through the scheduler's attempt hook) and each
 * object-event delivery (by observing the queue's claim, complete and fail calls), and which cron attempts are
 * still running.
 */
export class TriggerRecorder {
  /** Every attempt so far, in the order they ended. */
  readonly outcomes: TriggerOutcome[] = []
  readonly #cronsRunning = new Set<CronAttempt>()
  readonly #claimed = new Map<number, QueuedEvent>()
  #cursor = 0

  /** The scheduler's attempt hook (CronOptions.onAttempt). */
  readonly onCronAttempt = (attempt: CronAttempt): void => {
    this.#cronsRunning.add(attempt)
    const done = (ok: boolean, error: string | undefined, noRetry: boolean): void => {
      this.#cronsRunning.delete(attempt)
      this.outcomes.push({
        trigger: 'cron',
        function: attempt.function,
        cron: attempt.cron,
        scheduledTime: attempt.scheduledTime,
        attempt: attempt.attempt,
        ok,
        error,
        noRetry,
      })
    }
    attempt.result.then(
      (r) => done(r.ok, r.ok ? undefined : (r.error ?? 'the scheduled handler failed'), r.noRetry),
      (e: unknown) => done(false, e instanceof Error ? e.message : String(e), false),
    )
  }

  /** Cron attempts still running. */
  cronsRunning(): CronAttempt[] {
    return [...this.#cronsRunning]
  }

  /** The outcomes recorded since the last call. */
  takeNew(): TriggerOutcome[] {
    const fresh = this.outcomes.slice(this.#cursor)
    this.#cursor = this.outcomes.length
    return fresh
  }

  /**
   * Wraps a queue so that each delivery's end is recorded; everything else passes through unchanged.
   * @param queue the host's durable queue
   */
  observeQueue(queue: EventQueue): EventQueue {
    const record = (id: number, ok: boolean, error: string | undefined, next: ObjectOutcome['next']): void => {
      const item = this.#claimed.get(id)
      if (item === undefined) return
      this.#claimed.delete(id)
      this.outcomes.push({
        trigger: 'object',
        function: item.function,
        event: item.event,
        attempt: item.attempts,
        ok,
        error,
        next,
      })
    }
    return {
      enqueue: (deliveries, options) => queue.enqueue(deliveries, options),
      release: (ids) => queue.release(ids),
      discard: (ids, reason) => queue.discard(ids, reason),
      claim: async (now, limit) => {
        const items = await queue.claim(now, limit)
        for (const item of items) this.#claimed.set(item.id, item)
        return items
      },
      complete: async (id) => {
        await queue.complete(id)
        record(id, true, undefined, 'done')
      },
      fail: async (id, error, retryAt) => {
        await queue.fail(id, error, retryAt)
        record(id, false, error, retryAt === undefined ? 'dead' : 'retry')
      },
      recover: () => queue.recover(),
      list: (filter) => queue.list(filter),
      replay: (ids) => queue.replay(ids),
      counts: () => queue.counts(),
    }
  }
}
