import { SovraError } from '../core/index.ts'
import type { FunctionBundle } from './bundle.ts'
import { answerBindingCall, type CallerOf } from './binding-call.ts'
import type { Attribution, FunctionLogLine, PoolOptions } from './pool-options.ts'
import { writeConsoleText } from './isolate-log.ts'
import { startSlot, stopSlot, type Slot, type SlotExit, type SlotMessage } from './slot.ts'

/**
 * Names the invocation an event in an isolate concerns: the only one running, every one when several ran, or the
 * one started last when none ran (a timer it left behind).
 * @param running the invocation ids running at the time
 * @param last the invocation the isolate started last
 */
export function attribute(running: readonly string[], last: string | undefined): Attribution {
  if (running.length === 1) return { invocationId: running[0] as string, attributedTo: 'running' }
  if (running.length > 1) return { invocationIds: [...running], attributedTo: 'running' }
  return last === undefined ? {} : { invocationId: last, attributedTo: 'last-started' }
}

/** What an {@link IsolateSet} tells its pool. */
export interface IsolateSetEvents<J> {
  /** An isolate became ready or went away: queued work may move (or start another isolate). */
  onCapacity(): void
  /** A message for one of the isolate's invocations. */
  onMessage(slot: Slot<J>, msg: SlotMessage): void
  /** An isolate is gone: every invocation it still had ends with this error and outcome. */
  onLost(slot: Slot<J>, error: SovraError, outcome: SlotExit): void
  /** Who made a binding call: the context of the named invocation, if the isolate is running it. */
  callerOf: CallerOf<J>
  /** The invocation ids an isolate is running. */
  runningIds(slot: Slot<J>): string[]
}

/**
 * The isolates of one pool: starts them (from spares when there are), keeps the warm minimum, replaces the ones
 * that crash, run out of memory or are terminated, and switches generations on reload. Which invocation runs where
 * is the pool's business; this only answers which isolate has room.
 */
export class IsolateSet<J> {
  readonly slots = new Set<Slot<J>>()
  /** The bundle new isolates load. */
  bundle: FunctionBundle
  /** Isolates replaced after they were lost. */
  restarts = 0
  /** Set when the current bundle failed to load; queued work fails with it. */
  loadError: SovraError | undefined
  /** Set at close: lost isolates are no longer replaced. */
  closing = false
  #gen = 0
  readonly #opts: PoolOptions
  readonly #events: IsolateSetEvents<J>

  /**
   * @param options the pool's options (name, limits, isolate settings, env, spares, observer)
   * @param events what to tell the pool
   */
  constructor(options: PoolOptions, events: IsolateSetEvents<J>) {
    this.#opts = options
    this.#events = events
    this.bundle = options.bundle
  }

  /** Isolates of the current bundle that are not retiring (ready or starting). */
  current(): Array<Slot<J>> {
    return [...this.slots].filter((s) => s.gen === this.#gen && !s.retiring)
  }

  /** The ready isolate of the current bundle with the fewest invocations, if one has room for another. */
  free(): Slot<J> | undefined {
    let best: Slot<J> | undefined
    for (const s of this.slots) {
      if (!s.ready || s.retiring || s.gen !== this.#gen || s.jobs.size >= this.#opts.isolates.concurrency) continue
      if (best === undefined || s.jobs.size < best.jobs.size) best = s
    }
    return best
  }

  /** True when another isolate may start (isolates.max). */
  canGrow(): boolean {
    return this.current().length < this.#opts.isolates.max
  }

  /**
   * Starts isolates for `waiting` queued invocations when the ones already starting cannot take them all.
   * @param waiting how many invocations wait
   */
  grow(waiting: number): void {
    const starting = this.current().filter((s) => !s.ready).length
    if (starting * this.#opts.isolates.concurrency < waiting && this.canGrow()) this.spawn()
  }

  /** True when no isolate has an invocation. */
  idle(): boolean {
    for (const s of this.slots) if (s.jobs.size > 0) return false
    return true
  }

  /** Starts the warm minimum and waits until it is ready. */
  async start(): Promise<void> {
    const slots = Array.from({ length: this.#opts.isolates.min }, () => this.spawn())
    await Promise.all(slots.map((s) => s.whenReady))
  }

  /**
   * Starts isolates on a new bundle; once they loaded, the old ones retire (they stop when their work is done).
   * Throws, leaving the old bundle serving, when the new one fails to load.
   * @param bundle the new bundle
   */
  async reload(bundle: FunctionBundle): Promise<void> {
    const gen = this.#gen + 1
    const fresh = Array.from({ length: Math.max(1, this.#opts.isolates.min) }, () => this.spawn(bundle, gen))
    try {
      await Promise.all(fresh.map((s) => s.whenReady))
    } catch (error) {
      for (const s of fresh) void s.worker.terminate()
      throw error
    }
    this.#gen = gen
    this.bundle = bundle
    this.loadError = undefined
    for (const s of this.slots) {
      if (s.gen === gen) continue
      s.retiring = true
      if (s.jobs.size === 0) void s.worker.terminate()
    }
  }

  /**
   * Stops every isolate; the invocations they still have end with `lost`.
   * @param lost the error they end with
   */
  async stop(lost: SovraError): Promise<void> {
    await Promise.all(
      [...this.slots].map((s) => {
        s.exitReason ??= { outcome: 'unavailable', error: lost }
        return stopSlot(s)
      }),
    )
  }

  /**
   * Starts an isolate.
   * @param bundle the bundle it loads (default: the current one)
   * @param gen its generation
   */
  spawn(bundle = this.bundle, gen = this.#gen): Slot<J> {
    const name = this.#opts.name
    const observer = this.#opts.observer
    const slot = startSlot<J>({
      name,
      bundle,
      gen,
      env: this.#opts.env,
      limits: this.#opts.limits,
      spares: this.#opts.spares,
      onReady: (s) => {
        observer?.onIsolate?.({ function: name, event: 'ready', startMs: Date.now() - s.spawnedAt })
        this.#events.onCapacity()
      },
      onInitError: (s, error, cause) => {
        if (s.gen === this.#gen) this.loadError = error
        const version = s.bundle.version
        observer?.onIsolate?.({ function: name, event: 'init-error', reason: cause.message, version, error: cause })
      },
      onMessage: (s, msg) => this.#events.onMessage(s, msg),
      onCall: (s, msg) => void answerBindingCall(s, msg, this.#opts.bindings, name, this.#events.callerOf),
      onFault: (s, msg) =>
        observer?.onIsolate?.({
          function: name,
          event: 'fault',
          reason: msg.kind,
          version: s.bundle.version,
          error: msg.error,
          ...attribute(msg.running, msg.last),
        }),
      onLog: (s, msg) => {
        if (observer?.onLog === undefined) return writeConsoleText(msg)
        const line: FunctionLogLine = {
          function: name,
          version: s.bundle.version,
          method: msg.method,
          message: msg.message,
        }
        if (msg.invocation !== undefined) line.invocationId = msg.invocation
        if (msg.trace !== undefined) line.traceId = msg.trace
        observer.onLog(line)
      },
      onExit: (s, code) => this.#onExit(s, code),
    })
    this.slots.add(slot)
    observer?.onIsolate?.({ function: name, event: 'spawn' })
    return slot
  }

  #onExit(slot: Slot<J>, code: number): void {
    this.slots.delete(slot)
    const reason = slot.exitReason ?? {
      outcome: 'crash' as const,
      error: new SovraError(
        'ERR_ISOLATE_LOST',
        `function "${this.#opts.name}"'s isolate exited (code ${code}); it was replaced`,
      ),
    }
    // Named before onLost ends the invocations: which ones the isolate took down with it.
    const attribution: Attribution =
      reason.invocationId === undefined
        ? attribute(this.#events.runningIds(slot), slot.lastInvocation)
        : { invocationId: reason.invocationId, attributedTo: 'deadline' }
    this.#events.onLost(slot, reason.error, reason.outcome)
    slot.jobs.clear()
    this.#opts.observer?.onIsolate?.({
      function: this.#opts.name,
      event: 'exit',
      // An isolate of the generation before a reload, stopped once its work was done, is no crash (issue 11).
      reason: slot.retiring && slot.exitReason === undefined ? 'reload' : reason.outcome,
      version: slot.bundle.version,
      ...attribution,
      ...(reason.cause === undefined ? {} : { error: reason.cause }),
    })
    if (!this.closing && !slot.retiring && reason.outcome !== 'unavailable') {
      this.restarts++
      // Keep the warm minimum: a replacement starts at once.
      if (this.current().length < this.#opts.isolates.min) this.spawn()
    }
    this.#events.onCapacity()
  }
}
