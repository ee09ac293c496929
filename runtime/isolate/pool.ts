import { randomUUID } from 'node:crypto'
import { SovraError, type Invocation, type ObjectEvent, type Principal, type TriggerKind } from '../core/index.ts'
import type { IsolateSettings, Limits } from '../config/schema.ts'
import type { FunctionBundle } from './bundle.ts'
import { serializeError, toHeaderList, type CallMessage, type EnvSpec, type EventMessage, type FetchMessage, type HeaderList } from './codec.ts'
import { applyWorkerMessage, failJob, type EventResult, type InvocationRecord, type Job, type JobHooks, type JobMessage, type Outcome } from './job.ts'
import type { SpareIsolates } from './spares.ts'
import { startSlot, type Slot } from './slot.ts'

export type { EventResult, InvocationRecord, Outcome } from './job.ts'

/** How long an idle isolate gets to stop by itself at close before it is terminated. */
export const STOP_GRACE_MS = 500
/** After the deadline, how long a cooperative handler gets to stop before its isolate is terminated. */
export const TERMINATE_GRACE_MS = 200

/** Isolate lifecycle events, for metrics and logs. */
export interface IsolateEvent {
  function: string
  event: 'spawn' | 'ready' | 'exit' | 'init-error'
  reason?: string
  /** ms from spawn to ready, on 'ready'. */
  startMs?: number
}

/** Callbacks a host passes to observe a pool. */
export interface PoolObserver {
  onInvocation?(record: InvocationRecord): void
  onIsolate?(event: IsolateEvent): void
}

/** What a pool needs: the function's name, limits, pool settings, bundle and env. */
export interface PoolOptions {
  name: string
  limits: Limits
  isolates: IsolateSettings
  bundle: FunctionBundle
  env: EnvSpec
  observer?: PoolObserver
  /** Pre-started threads to take instead of starting one (faster scale-out and reloads). */
  spares?: SpareIsolates
  /** Runs the binding calls functions make (`env.DOCS.put(...)`) on the host's adapters. */
  bindings?: BindingHost | undefined
}

/** Runs one binding call on the host; returns a structured-clone-safe value and buffers to transfer. */
export type BindingHost = (binding: string, method: string, args: unknown[]) => Promise<{ value: unknown; transfer: ArrayBuffer[] }>

/** Per-call options for {@link IsolatePool.fetch} and {@link IsolatePool.run}. */
export interface CallOptions {
  invocationId?: string
  trigger?: TriggerKind
  principal?: Principal
  /** Aborts the invocation (e.g. the HTTP client went away). See also {@link IsolatePool.cancel}. */
  signal?: AbortSignal
  /** Extra fields copied into the invocation record (method, path), for the log line. */
  fields?: Record<string, unknown>
}


/** A request as plain data: what crosses into the isolate. */
export interface RequestHead {
  method: string
  url: string
  headers: HeaderList
  body: Uint8Array | null
}

async function toHead(request: Request): Promise<RequestHead> {
  const body = request.body === null ? null : new Uint8Array(await request.arrayBuffer())
  return { method: request.method, url: request.url, headers: toHeaderList(request.headers), body }
}

/** Live numbers of a pool. */
export interface PoolStats {
  function: string
  version: string
  isolates: number
  ready: number
  inflight: number
  queued: number
  restarts: number
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
  #bundle: FunctionBundle
  readonly #opts: PoolOptions
  readonly #slots = new Set<Slot>()
  readonly #queue: Job[] = []
  #gen = 0
  #nextId = 1
  #restarts = 0
  #closing = false
  #loadError: SovraError | undefined
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
    this.#bundle = options.bundle
  }

  /** The bundle new invocations run. */
  get bundle(): FunctionBundle {
    return this.#bundle
  }

  /** True when the warm minimum of isolates on the current bundle is ready. */
  get ready(): boolean {
    return this.#current().filter((s) => s.ready).length >= this.#opts.isolates.min
  }

  /** Starts the warm minimum and waits until it is ready; rejects with ERR_FUNCTION_LOAD if the bundle fails to load. */
  async start(): Promise<void> {
    const slots = Array.from({ length: this.#opts.isolates.min }, () => this.#spawn())
    await Promise.all(slots.map((s) => s.whenReady))
  }

  /**
   * Switches to a new bundle without dropping anything: new isolates start and must load; then new invocations go
   * to them and the old isolates finish what they have before they stop. On a bad bundle the old one keeps serving.
   * @param bundle the new bundle
   */
  async reload(bundle: FunctionBundle): Promise<void> {
    const gen = this.#gen + 1
    const fresh = Array.from({ length: Math.max(1, this.#opts.isolates.min) }, () => this.#spawn(bundle, gen))
    try {
      await Promise.all(fresh.map((s) => s.whenReady))
    } catch (error) {
      for (const s of fresh) void s.worker.terminate()
      throw error
    }
    this.#gen = gen
    this.#bundle = bundle
    this.#loadError = undefined
    for (const s of this.#slots) {
      if (s.gen === gen) continue
      s.retiring = true
      if (s.jobs.size === 0) void s.worker.terminate()
    }
    this.#pump()
  }

  /**
   * Runs the function's `fetch` handler. Never rejects: failures come back as JSON error responses (500 handler
   * error, 503 overloaded or isolate lost, 504 deadline) carrying the invocation id.
   * @param request a Request, or the plain head and buffered body a host already has (cheaper: no Request object)
   * @param options invocation id, trigger, principal, abort signal
   */
  async fetch(request: Request | RequestHead, options: CallOptions = {}): Promise<Response> {
    const head = request instanceof Request ? await toHead(request) : request
    return new Promise<Response>((resolve) => {
      const job = this.#job(options, (meta) => ({ type: 'fetch', ...meta, ...head }) satisfies FetchMessage)
      if (head.body !== null && head.body.byteLength > 0 && head.body.byteOffset === 0 && head.body.byteLength === head.body.buffer.byteLength) {
        job.transfer.push(head.body.buffer as ArrayBuffer)
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
      const trigger = options.trigger ?? (handler === 'scheduled' ? 'cron' : 'object')
      const job = this.#job({ ...options, trigger }, (meta) => ({ type: 'event', handler, ...meta, ...payload }) satisfies EventMessage)
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
    for (const s of this.#slots) inflight += s.jobs.size
    return {
      function: this.name,
      version: this.#bundle.version,
      isolates: this.#slots.size,
      ready: [...this.#slots].filter((s) => s.ready && !s.retiring).length,
      inflight,
      queued: this.#queue.length,
      restarts: this.#restarts,
    }
  }

  /**
   * Stops taking work, lets in-flight invocations finish for up to `graceMs`, then terminates every isolate.
   * @param graceMs how long to wait for in-flight work
   */
  async close(graceMs = 10_000): Promise<void> {
    this.#closing = true
    const busy = (): boolean => this.#queue.length > 0 || [...this.#slots].some((s) => s.jobs.size > 0)
    if (busy()) {
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
    await Promise.all([...this.#slots].map(async (s) => {
      s.exitReason ??= { outcome: 'unavailable', error: lost }
      // Idle isolates are asked to stop, so they end like any thread (profilers and exit hooks run); one that
      // does not within STOP_GRACE_MS, or still has work, is terminated.
      if (s.jobs.size > 0) return s.worker.terminate()
      const exited = new Promise<void>((resolve) => s.worker.once('exit', () => resolve()))
      s.outbox.push({ type: 'stop' })
      s.outbox.flush()
      const timer = setTimeout(() => void s.worker.terminate(), STOP_GRACE_MS)
      await exited
      clearTimeout(timer)
    }))
  }

  #job(options: CallOptions, build: (meta: Pick<FetchMessage, 'id' | 'invocation' | 'principal' | 'deadline'>) => FetchMessage | EventMessage): Job {
    const id = this.#nextId++
    const admitted = Date.now()
    const invocation: Invocation = {
      id: options.invocationId ?? randomUUID(),
      function: this.name,
      version: this.#bundle.version,
      trigger: options.trigger ?? 'http',
    }
    const deadline = admitted + this.#opts.limits.timeout_ms
    const message = build({ id, invocation, principal: options.principal, deadline })
    return {
      id, message, fields: options.fields, transfer: [], invocation, admitted, dispatched: undefined, deadline, timer: undefined,
      settleHead: undefined, settleEvent: undefined, stream: undefined, unacked: 0, status: undefined,
      outcome: 'ok', error: undefined, eventError: undefined, waitUntilErrors: [], finished: false, slot: undefined,
    }
  }

  #admit(job: Job, signal: AbortSignal | undefined): void {
    if (this.#closing) return this.#finish(job, new SovraError('ERR_SHUTTING_DOWN', `function "${this.name}" is shutting down; retry on another instance`), 'unavailable')
    if (this.#queue.length >= this.#opts.isolates.queue && this.#free() === undefined && !this.#canGrow()) {
      const error = new SovraError('ERR_OVERLOADED', `function "${this.name}" is at capacity: ${this.#slots.size} isolates busy and ${this.#queue.length} invocations queued (isolates.queue = ${this.#opts.isolates.queue}); retry later`, { details: { retry_after: 1 } })
      return this.#finish(job, error, 'overloaded')
    }
    job.timer = setTimeout(() => this.#onDeadline(job), Math.max(0, job.deadline - Date.now()))
    this.#byInvocation.set(job.invocation.id, job)
    signal?.addEventListener('abort', () => this.#cancel(job, 'the client went away'), { once: true })
    this.#queue.push(job)
    this.#pump()
  }

  #current(): Slot[] {
    return [...this.#slots].filter((s) => s.gen === this.#gen && !s.retiring)
  }

  #free(): Slot | undefined {
    let best: Slot | undefined
    for (const s of this.#slots) {
      if (!s.ready || s.retiring || s.gen !== this.#gen || s.jobs.size >= this.#opts.isolates.concurrency) continue
      if (best === undefined || s.jobs.size < best.jobs.size) best = s
    }
    return best
  }

  #canGrow(): boolean {
    return this.#current().length < this.#opts.isolates.max
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const slot = this.#free()
      if (slot === undefined) break
      const job = this.#queue.shift() as Job
      job.dispatched = Date.now()
      job.slot = slot
      slot.jobs.set(job.id, job)
      slot.outbox.push(job.message, job.transfer)
    }
    if (this.#queue.length === 0 || this.#closing) return
    if (this.#loadError !== undefined) {
      for (const job of this.#queue.splice(0)) this.#finish(job, this.#loadError, 'unavailable')
      return
    }
    const starting = this.#current().filter((s) => !s.ready).length
    if (starting * this.#opts.isolates.concurrency < this.#queue.length && this.#canGrow()) this.#spawn()
  }

  #spawn(bundle = this.#bundle, gen = this.#gen): Slot {
    const slot = startSlot({
      name: this.name,
      bundle,
      gen,
      env: this.#opts.env,
      limits: this.#opts.limits,
      spares: this.#opts.spares,
      onReady: (s) => {
        this.#opts.observer?.onIsolate?.({ function: this.name, event: 'ready', startMs: Date.now() - s.spawnedAt })
        this.#pump()
      },
      onInitError: (s, error, reason) => {
        if (s.gen === this.#gen) this.#loadError = error
        this.#opts.observer?.onIsolate?.({ function: this.name, event: 'init-error', reason })
      },
      onMessage: (s, msg) => this.#onWorkerMessage(s, msg),
      onCall: (s, msg) => void this.#onCall(s, msg),
      onExit: (s, code) => this.#onExit(s, code),
    })
    this.#slots.add(slot)
    this.#opts.observer?.onIsolate?.({ function: this.name, event: 'spawn' })
    return slot
  }

  #onExit(slot: Slot, code: number): void {
    this.#slots.delete(slot)
    const reason = slot.exitReason ?? { outcome: 'crash' as Outcome, error: new SovraError('ERR_ISOLATE_LOST', `function "${this.name}"'s isolate exited (code ${code}); it was replaced`) }
    for (const job of slot.jobs.values()) this.#finish(job, reason.error, reason.outcome)
    slot.jobs.clear()
    this.#opts.observer?.onIsolate?.({ function: this.name, event: 'exit', reason: reason.outcome })
    if (this.#closing || slot.retiring || reason.outcome === 'unavailable') return this.#pump()
    this.#restarts++
    // Keep the warm minimum: a replacement starts at once.
    if (this.#current().length < this.#opts.isolates.min) this.#spawn()
    this.#pump()
  }

  async #onCall(slot: Slot, msg: CallMessage): Promise<void> {
    const host = this.#opts.bindings
    try {
      if (host === undefined) throw new SovraError('ERR_CONFIG', `function "${this.name}" has no bindings configured; ${msg.binding} is unknown`)
      const { value, transfer } = await host(msg.binding, msg.method, msg.args)
      slot.outbox.push({ type: 'result', callId: msg.callId, ok: true, value }, transfer)
    } catch (error) {
      slot.outbox.push({ type: 'result', callId: msg.callId, ok: false, error: serializeError(error) })
    }
  }

  #onWorkerMessage(slot: Slot, msg: JobMessage): void {
    const job = slot.jobs.get(msg.id)
    if (job === undefined) return
    applyWorkerMessage(job, msg, this.#hooks)
  }

  #timeoutError(): SovraError {
    return new SovraError('ERR_TIMEOUT', `function "${this.name}" did not finish within limits.timeout_ms (${this.#opts.limits.timeout_ms} ms)`)
  }

  #onDeadline(job: Job): void {
    job.timer = undefined
    if (job.finished) return
    const queued = this.#queue.indexOf(job)
    if (queued >= 0) {
      this.#queue.splice(queued, 1)
      return this.#finish(job, this.#timeoutError(), 'timeout')
    }
    failJob(job, this.#timeoutError(), 'timeout')
    const slot = job.slot
    if (slot === undefined || !slot.jobs.has(job.id)) return
    slot.outbox.push({ type: 'cancel', id: job.id, reason: 'deadline' })
    // A handler that honours ctx.signal stops by itself; one stuck in a loop is terminated with its isolate.
    setTimeout(() => {
      if (!job.finished && slot.jobs.has(job.id)) {
        slot.exitReason ??= { outcome: 'timeout', error: this.#timeoutError() }
        void slot.worker.terminate()
      }
    }, TERMINATE_GRACE_MS).unref()
  }

  #cancel(job: Job, reason: string): void {
    if (job.finished) return
    const queued = this.#queue.indexOf(job)
    if (queued >= 0) {
      this.#queue.splice(queued, 1)
      return this.#finish(job, new SovraError('ERR_BAD_REQUEST', `invocation cancelled: ${reason}`, { status: 499 }), 'cancelled')
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
    const end = Date.now()
    this.#opts.observer?.onInvocation?.({
      invocation: job.invocation,
      status: job.status ?? 500,
      outcome: job.outcome,
      durationMs: end - job.admitted,
      queuedMs: (job.dispatched ?? end) - job.admitted,
      error: job.error,
      waitUntilErrors: job.waitUntilErrors,
      fields: job.fields,
    })
    if (this.#idle.length > 0 && this.#queue.length === 0 && [...this.#slots].every((s) => s.jobs.size === 0)) {
      for (const f of this.#idle.splice(0)) f()
    }
    this.#pump()
  }
}

