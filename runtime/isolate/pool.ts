import { randomUUID } from 'node:crypto'
import { SovraError, type ObjectEvent } from '../core/index.ts'
import type { FunctionBundle } from './bundle.ts'
import { toHeaderList, type EventMessage, type FetchMessage } from './codec.ts'
import { expireRunning } from './deadline.ts'
import { IsolateSet } from './isolate-set.ts'
import { createJob, failJob, invocationRecord, type EventResult, type Job, type Outcome } from './job.ts'
import { applyWorkerMessage, type JobHooks } from './job-messages.ts'
import type { CallOptions, PoolOptions, PoolStats, RequestHead } from './pool-options.ts'

// The pool's public API stays importable from here; each part lives in its own module.
export type { EventResult, InvocationRecord, Outcome } from './job.ts'
export type {
  Attribution,
  BindingHost,
  CallOptions,
  FunctionLogLine,
  IsolateEvent,
  PoolObserver,
  PoolOptions,
  PoolStats,
  RequestHead,
} from './pool-options.ts'
export { STOP_GRACE_MS } from './slot.ts'

export { TERMINATE_GRACE_MS } from './deadline.ts'

async function toHead(request: Request): Promise<RequestHead> {
  const body = request.body === null ? null : new Uint8Array(await request.arrayBuffer())
  return { method: request.method, url: request.url, headers: toHeaderList(request.headers), body }
}

/**
 * A pool of isolates (worker threads) for one function: keeps a warm minimum, grows to a maximum, queues up to a
 * bound, enforces the deadline by terminating an isolate that will not stop, and replaces isolates that crash or
 * run out of memory, so other invocations and functions carry on.
 *
 * @example
 * const pool = new IsolatePool({ name: 'echo', limits, isolates, bundle, env: { vars: {}, secrets: {} } })
 * await pool.start()
 * const res = await pool.fetch(new Request('http://local/v1/echo'))
 */
export class IsolatePool {
  readonly name: string
  readonly #opts: PoolOptions
  readonly #isolates: IsolateSet<Job>
  readonly #queue: Job[] = []
  #nextId = 1
  #closing = false
  #idle: Array<() => void> = []
  readonly #byInvocation = new Map<string, Job>()
  readonly #hooks: JobHooks = {
    ack: (job, n) => job.slot?.outbox.push({ type: 'ack', id: job.id, n }),
    cancel: (job, reason) => this.#cancel(job, reason),
    finish: (job) => this.#finish(job),
    timeoutError: () => this.#timeoutError(),
  }

  /** @param options the function, its limits and bundle */
  constructor(options: PoolOptions) {
    this.name = options.name
    this.#opts = options
    this.#isolates = new IsolateSet<Job>(options, {
      onCapacity: () => this.#pump(),
      onMessage: (slot, msg) => {
        const job = slot.jobs.get(msg.id)
        if (job !== undefined) applyWorkerMessage(job, msg, this.#hooks)
      },
      onLost: (slot, error, outcome) => {
        for (const job of slot.jobs.values()) this.#finish(job, error, outcome)
      },
      runningIds: (slot) => [...slot.jobs.values()].map((job) => job.invocation.id),
      callerOf: (slot, id) => {
        const job = slot.jobs.get(id)
        if (job === undefined) return {}
        const principal = job.message.principal
        return principal === undefined
          ? { invocationId: job.invocation.id }
          : { principal, invocationId: job.invocation.id }
      },
    })
  }

  /** The bundle new invocations run. */
  get bundle(): FunctionBundle {
    return this.#isolates.bundle
  }

  /** True when the warm minimum of isolates on the current bundle is ready. */
  get ready(): boolean {
    return this.#isolates.current().filter((s) => s.ready).length >= this.#opts.isolates.min
  }

  /** Starts the warm minimum and waits until it is ready; rejects with ERR_FUNCTION_LOAD if the bundle fails to load. */
  async start(): Promise<void> {
    await this.#isolates.start()
  }

  /**
   * Switches to a new bundle without dropping anything: new isolates start and must load; then new invocations go
   * to them and the old isolates finish what they have before they stop. On a bad bundle the old one keeps serving.
   * @param bundle the new bundle
   */
  async reload(bundle: FunctionBundle): Promise<void> {
    await this.#isolates.reload(bundle)
    this.#pump()
  }

  /**
   * Runs the function's `fetch` handler. Never rejects: failures come back as JSON error responses (500 handler
   * error, 503 overloaded or isolate lost, 504 deadline) carrying the invocation id.
   * @param request a Request, or the plain head and buffered body a host already has (cheaper: no Request object)
   * @param options invocation id, trigger, principal, abort signal
   */
  fetch(request: Request | RequestHead, options: CallOptions = {}): Promise<Response> {
    if (request instanceof Request) return toHead(request).then((head) => this.fetch(head, options))
    const { method, url, headers, body } = request
    return new Promise<Response>((resolve) => {
      const m = this.#meta(options, 'http')
      const message: FetchMessage =
        options.principal === undefined
          ? {
              type: 'fetch',
              id: m.id,
              invocationId: m.invocation.id,
              trigger: m.invocation.trigger,
              deadline: m.deadline,
              method,
              url,
              headers,
              body,
            }
          : {
              type: 'fetch',
              id: m.id,
              invocationId: m.invocation.id,
              trigger: m.invocation.trigger,
              principal: options.principal,
              deadline: m.deadline,
              method,
              url,
              headers,
              body,
            }
      const job = createJob(message, m.invocation, m.admitted, options.fields)
      if (body !== null && body.byteLength > 0 && body.byteOffset === 0 && body.byteLength === body.buffer.byteLength) {
        job.transfer.push(body.buffer as ArrayBuffer)
      }
      job.settleHead = resolve
      this.#admit(job, options.signal)
    })
  }

  /**
   * Runs the `scheduled` or `object` handler. Never rejects; the result says whether it succeeded.
   * @param handler which handler
   * @param payload the cron and time, or the object event
   * @param options invocation id, trigger, abort signal
   */
  run(
    handler: 'scheduled' | 'object',
    payload: { cron?: string; scheduledTime?: number; event?: ObjectEvent },
    options: CallOptions = {},
  ): Promise<EventResult> {
    return new Promise<EventResult>((resolve) => {
      const m = this.#meta(options, handler === 'scheduled' ? 'cron' : 'object')
      const message: EventMessage = {
        type: 'event',
        handler,
        id: m.id,
        invocationId: m.invocation.id,
        trigger: m.invocation.trigger,
        deadline: m.deadline,
        ...payload,
      }
      if (options.principal !== undefined) message.principal = options.principal
      const job = createJob(message, m.invocation, m.admitted, options.fields)
      job.settleEvent = resolve
      this.#admit(job, options.signal)
    })
  }

  /**
   * Cancels an invocation: dropped if still queued, its ctx.signal aborted and its stream stopped if running.
   * Cheaper than an AbortSignal per request (Node 20 makes those costly), so hosts use this for client disconnects.
   * @param invocationId the invocation
   * @param reason why, for the handler and the log
   */
  cancel(invocationId: string, reason: string): void {
    const job = this.#byInvocation.get(invocationId)
    if (job !== undefined) this.#cancel(job, reason)
  }

  /** Live numbers. */
  stats(): PoolStats {
    let inflight = 0
    let ready = 0
    for (const s of this.#isolates.slots) {
      inflight += s.jobs.size
      if (s.ready && !s.retiring) ready++
    }
    return {
      function: this.name,
      version: this.bundle.version,
      isolates: this.#isolates.slots.size,
      ready,
      inflight,
      queued: this.#queue.length,
      restarts: this.#isolates.restarts,
    }
  }

  /**
   * Stops taking work, lets in-flight invocations finish for up to `graceMs`, then terminates every isolate.
   * @param graceMs how long to wait for in-flight work
   */
  async close(graceMs = 10_000): Promise<void> {
    this.#closing = true
    this.#isolates.closing = true
    if (!this.#isIdle()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs)
        this.#idle.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    const lost = new SovraError('ERR_SHUTTING_DOWN', `function "${this.name}" is shutting down`)
    for (const job of this.#queue.splice(0)) this.#finish(job, lost, 'unavailable')
    await this.#isolates.stop(lost)
  }

  /** What every invocation starts with: its id, the Invocation it carries, admission time and deadline. */
  #meta(options: CallOptions, trigger: NonNullable<CallOptions['trigger']>) {
    const admitted = Date.now()
    return {
      id: this.#nextId++,
      invocation: {
        id: options.invocationId ?? randomUUID(),
        function: this.name,
        version: this.bundle.version,
        trigger: options.trigger ?? trigger,
      },
      admitted,
      deadline: admitted + this.#opts.limits.timeout_ms,
    }
  }

  #isIdle(): boolean {
    return this.#queue.length === 0 && this.#isolates.idle()
  }

  #admit(job: Job, signal: AbortSignal | undefined): void {
    if (this.#closing)
      return this.#finish(
        job,
        new SovraError('ERR_SHUTTING_DOWN', `function "${this.name}" is shutting down; retry on another instance`),
        'unavailable',
      )
    if (
      this.#queue.length >= this.#opts.isolates.queue &&
      this.#isolates.free() === undefined &&
      !this.#isolates.canGrow()
    ) {
      const error = new SovraError(
        'ERR_OVERLOADED',
        `function "${this.name}" is at capacity: ${this.#isolates.slots.size} isolates busy and ${this.#queue.length} invocations queued (isolates.queue = ${this.#opts.isolates.queue}); retry later`,
        { details: { retry_after: 1 } },
      )
      return this.#finish(job, error, 'overloaded')
    }
    job.timer = setTimeout(this.#onDeadline, Math.max(0, job.deadline - Date.now()), job)
    this.#byInvocation.set(job.invocation.id, job)
    signal?.addEventListener('abort', () => this.#cancel(job, 'the client went away'), { once: true })
    this.#queue.push(job)
    this.#pump()
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const slot = this.#isolates.free()
      if (slot === undefined) break
      const job = this.#queue.shift() as Job
      job.dispatched = Date.now()
      job.slot = slot
      slot.lastInvocation = job.invocation.id
      slot.jobs.set(job.id, job)
      slot.outbox.push(job.message, job.transfer)
    }
    if (this.#queue.length === 0 || this.#closing) return
    const loadError = this.#isolates.loadError
    if (loadError !== undefined) {
      for (const job of this.#queue.splice(0)) this.#finish(job, loadError, 'unavailable')
      return
    }
    this.#isolates.grow(this.#queue.length)
  }

  #timeoutError(): SovraError {
    return new SovraError(
      'ERR_TIMEOUT',
      `function "${this.name}" did not finish within limits.timeout_ms (${this.#opts.limits.timeout_ms} ms)`,
    )
  }

  // One function for every job's timer (the job is the timer's argument): no closure per invocation.
  readonly #onDeadline = (job: Job): void => {
    job.timer = undefined
    if (job.finished) return
    const queued = this.#queue.indexOf(job)
    if (queued >= 0) {
      this.#queue.splice(queued, 1)
      return this.#finish(job, this.#timeoutError(), 'timeout')
    }
    expireRunning(job, () => this.#timeoutError())
  }

  #cancel(job: Job, reason: string): void {
    if (job.finished) return
    const queued = this.#queue.indexOf(job)
    if (queued >= 0) {
      this.#queue.splice(queued, 1)
      return this.#finish(
        job,
        new SovraError('ERR_BAD_REQUEST', `invocation cancelled: ${reason}`, { status: 499 }),
        'cancelled',
      )
    }
    job.outcome = 'cancelled'
    if (job.slot?.jobs.has(job.id) === true) job.slot.outbox.push({ type: 'cancel', id: job.id, reason })
  }

  #finish(job: Job, error?: SovraError, outcome?: Outcome): void {
    if (job.finished) return
    if (error !== undefined) failJob(job, error, outcome ?? 'error')
    job.finished = true
    this.#byInvocation.delete(job.invocation.id)
    if (job.timer !== undefined) clearTimeout(job.timer)
    const s = job.slot
    if (s !== undefined && s.jobs.delete(job.id) && s.retiring && s.jobs.size === 0) void s.worker.terminate()
    this.#opts.observer?.onInvocation?.(invocationRecord(job, Date.now()))
    if (this.#idle.length > 0 && this.#isIdle()) {
      for (const f of this.#idle.splice(0)) f()
    }
    this.#pump()
  }
}
