import { SovraError } from '../../runtime/core/errors.ts'

/** Workload class: interactive requests always go before batch ones. */
export type WorkClass = 'interactive' | 'batch'

/** A slot handed out by {@link Admission.acquire}. */
export interface Grant {
  slot: number
  /** Milliseconds spent queued. */
  queuedMs: number
}

interface Waiter {
  cls: WorkClass
  enqueuedAt: number
  resolve(grant: Grant): void
  reject(error: Error): void
  timer: ReturnType<typeof setTimeout> | undefined
  cleanup(): void
}

/**
 * Admission inside one replica: N slots and two bounded FIFO queues. A free slot goes to the oldest interactive
 * waiter, then the oldest batch waiter. Batch work may hold at most `batchSlots` slots (by default all but one), so
 * an interactive request never waits behind a long batch generation: the reserve is what keeps interactive p95
 * within budget while batch work saturates the pool. A waiter whose deadline passes while queued is dropped (504);
 * a full queue refuses at once (429 with Retry-After), so overload never turns into unbounded latency.
 */
export class Admission {
  private readonly free: number[] = []
  private readonly queues: Record<WorkClass, Waiter[]> = { interactive: [], batch: [] }
  private readonly batchHeld = new Set<number>()
  /** Slots batch work may hold at once. */
  readonly batchSlots: number
  /** Seconds a refused caller is told to wait: roughly one request's service time. */
  retryAfterS = 1

  /**
   * @param slots parallel slots of the engine
   * @param queueMax waiters allowed across both classes
   * @param now the clock (tests)
   * @param batchSlots slots batch work may hold (default: all but one when there are several)
   */
  constructor(
    readonly slots: number,
    readonly queueMax: number,
    private readonly now: () => number = Date.now,
    batchSlots?: number,
  ) {
    for (let i = slots - 1; i >= 0; i--) this.free.push(i)
    this.batchSlots = Math.max(1, Math.min(slots, batchSlots ?? (slots > 1 ? slots - 1 : 1)))
  }

  // Slots 0..batchSlots-1 may run batch work; the others are the interactive reserve (a separate llama context).
  #batchMayTake(): boolean {
    return this.free.some((s) => s < this.batchSlots)
  }

  #grant(cls: WorkClass): number | undefined {
    let i: number
    if (cls === 'batch') {
      i = this.free.findIndex((s) => s < this.batchSlots)
    } else {
      i = this.free.findIndex((s) => s >= this.batchSlots)
      if (i < 0) i = this.free.length - 1
    }
    if (i < 0) return undefined
    const [slot] = this.free.splice(i, 1)
    if (slot !== undefined && cls === 'batch') this.batchHeld.add(slot)
    return slot
  }

  /** Slots in use. */
  get busy(): number {
    return this.slots - this.free.length
  }

  /**
   * Waiters per class.
   * @param cls the class
   */
  depth(cls: WorkClass): number {
    return this.queues[cls].length
  }

  /**
   * Waits for a slot. Rejects with ERR_QUEUE_FULL (429) when the queue is full, ERR_TIMEOUT (504) when `deadlineAt`
   * passes while queued, or the signal's reason when the caller goes away.
   * @param cls the request's class
   * @param deadlineAt epoch ms after which the request is worthless
   * @param signal aborts the wait (client disconnect)
   */
  acquire(cls: WorkClass, deadlineAt: number, signal?: AbortSignal): Promise<Grant> {
    const enqueuedAt = this.now()
    if (deadlineAt <= enqueuedAt) return Promise.reject(deadlineError(0))
    const canRun =
      cls === 'interactive'
        ? this.queues.interactive.length === 0
        : this.queues.interactive.length === 0 && this.queues.batch.length === 0 && this.#batchMayTake()
    const slot = canRun ? this.#grant(cls) : undefined
    if (slot !== undefined) return Promise.resolve({ slot, queuedMs: 0 })
    if (this.queues.interactive.length + this.queues.batch.length >= this.queueMax) {
      return Promise.reject(
        new SovraError(
          'ERR_QUEUE_FULL',
          `queue full: ${this.queueMax} requests already waiting (queue_max = ${this.queueMax}); retry after ${this.retryAfterS} s`,
          {
            details: { retry_after: this.retryAfterS },
          },
        ),
      )
    }
    return new Promise<Grant>((resolve, reject) => {
      const waiter: Waiter = {
        cls,
        enqueuedAt,
        resolve,
        reject,
        timer: undefined,
        cleanup: () => {
          if (waiter.timer !== undefined) clearTimeout(waiter.timer)
          signal?.removeEventListener('abort', onAbort)
        },
      }
      const drop = (error: Error): void => {
        const q = this.queues[cls]
        const i = q.indexOf(waiter)
        if (i >= 0) q.splice(i, 1)
        waiter.cleanup()
        reject(error)
      }
      const onAbort = (): void => drop(signal?.reason instanceof Error ? signal.reason : new Error('aborted'))
      waiter.timer = setTimeout(
        () => drop(deadlineError(this.now() - enqueuedAt)),
        Math.max(0, deadlineAt - enqueuedAt),
      )
      signal?.addEventListener('abort', onAbort, { once: true })
      this.queues[cls].push(waiter)
    })
  }

  /**
   * Gives a slot back; the next waiter (interactive first) gets it.
   * @param slot the slot from {@link acquire}
   */
  release(slot: number): void {
    this.batchHeld.delete(slot)
    this.free.push(slot)
    for (;;) {
      const next = this.queues.interactive[0] ?? (this.#batchMayTake() ? this.queues.batch[0] : undefined)
      if (next === undefined || this.free.length === 0) return
      const granted = this.#grant(next.cls)
      if (granted === undefined) return
      this.queues[next.cls].shift()
      next.cleanup()
      next.resolve({ slot: granted, queuedMs: this.now() - next.enqueuedAt })
    }
  }

  /** Slots held by batch work. */
  get batchBusy(): number {
    return this.batchHeld.size
  }

  /** Refuses every waiter (shutdown). */
  rejectAll(error: Error): void {
    for (const cls of ['interactive', 'batch'] as const) {
      for (const w of this.queues[cls].splice(0)) {
        w.cleanup()
        w.reject(error)
      }
    }
  }
}

function deadlineError(queuedMs: number): SovraError {
  return new SovraError(
    'ERR_TIMEOUT',
    `deadline passed after ${queuedMs} ms in the queue; the request was dropped before it ran`,
  )
}
