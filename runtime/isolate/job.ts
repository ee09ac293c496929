import { errorToResponse, isSovraError, SovraError, ERROR_CODES, type ErrorCode, type Invocation } from '../core/index.ts'
import { headerPairs, type EventMessage, type FetchMessage, type HeaderList, type SerializedError, type WorkerMessage } from './codec.ts'
import type { Slot } from './slot.ts'

/** How an invocation ended, for logs and metrics. */
export type Outcome = 'ok' | 'error' | 'timeout' | 'oom' | 'crash' | 'overloaded' | 'cancelled' | 'unavailable'

/** What the pool reports when an invocation is complete (body sent, waitUntil settled). */
export interface InvocationRecord {
  invocation: Invocation
  /** HTTP status (fetch) or the status the outcome maps to (events: 200 ok, 500 error, ...). */
  status: number
  outcome: Outcome
  /** From admission to completion, ms. */
  durationMs: number
  /** Time spent waiting for an isolate, ms. */
  queuedMs: number
  error: SerializedError | undefined
  /** waitUntil rejections. */
  waitUntilErrors: SerializedError[]
  /** Fields the caller attached (method, path). */
  fields: Record<string, unknown> | undefined
}

/** The result of a `scheduled` or `object` invocation. */
export interface EventResult {
  ok: boolean
  status: number
  outcome: Outcome
  error: SovraError | undefined
  /** What the handler actually threw (message and stack), for logs and dead letters; never for callers. */
  detail: string | undefined
  /** The handler called `controller.noRetry()`. */
  noRetry: boolean
}

/** One invocation in flight, from admission until done. Owned by the pool. */
export interface Job {
  id: number
  message: FetchMessage | EventMessage
  fields: Record<string, unknown> | undefined
  transfer: ArrayBuffer[]
  invocation: Invocation
  admitted: number
  dispatched: number | undefined
  deadline: number
  timer: NodeJS.Timeout | undefined
  /** Resolves the head (fetch) or the result (events); called once. */
  settleHead: ((response: Response) => void) | undefined
  settleEvent: ((result: EventResult) => void) | undefined
  stream: ReadableStreamDefaultController<Uint8Array> | undefined
  unacked: number
  status: number | undefined
  outcome: Outcome
  error: SerializedError | undefined
  /** An event handler's failure, held until `done` brings its noRetry flag. */
  eventError: { error: SovraError; outcome: Outcome } | undefined
  waitUntilErrors: SerializedError[]
  finished: boolean
  /** The isolate running it, once dispatched. */
  slot: Slot | undefined
}

/**
 * Turns an error that crossed the thread boundary into the SovraError a caller may see. Only our own codes pass
 * their message through; anything else a function threw becomes the generic ERR_HANDLER (the log has the rest).
 * @param e the serialised error
 */
export function toCallerError(e: SerializedError): SovraError {
  if (e.name === 'SovraError' && e.code !== undefined && e.code in ERROR_CODES) {
    return new SovraError(e.code as ErrorCode, e.message, e.details === undefined ? {} : { details: e.details })
  }
  return new SovraError('ERR_HANDLER', 'The function threw an error; see the log line with this invocation id.')
}

/**
 * Settles a job's caller with an error: an error response for fetch before its head, a failed stream after it,
 * a failed result for events.
 * @param job the job
 * @param error what to report
 * @param outcome how the invocation ended
 */
export function failJob(job: Job, error: SovraError, outcome: Outcome): void {
  if (job.outcome === 'ok' || job.outcome === 'error') job.outcome = outcome
  if (job.error === undefined) job.error = { name: error.name, message: error.message, code: error.code }
  if (job.settleHead !== undefined) {
    job.status = error.status
    const settle = job.settleHead
    job.settleHead = undefined
    settle(errorToResponse(error, job.invocation.id))
  } else if (job.stream !== undefined) {
    try {
      job.stream.error(error)
    } catch {
      // The stream was already closed or cancelled by the client: nothing left to tell.
    }
    job.stream = undefined
  }
  if (job.settleEvent !== undefined) {
    job.status = error.status
    const settle = job.settleEvent
    job.settleEvent = undefined
    settle({ ok: false, status: error.status, outcome, error, detail: error.message, noRetry: false })
  }
}

/** Builds a SovraError from anything. */
export function asSovraError(error: unknown, fallback: ErrorCode): SovraError {
  if (isSovraError(error)) return error
  return new SovraError(fallback, error instanceof Error ? error.message : String(error), { cause: error })
}

/**
 * The response headers as a plain record when that loses nothing (no Set-Cookie, whose values must stay apart):
 * Node's HTTP server writes a record as it is, while a list goes through undici's Headers first (measured in the
 * host's CPU profile). The isolate's Headers already joined other repeated names.
 * @param list the headers from the isolate
 * @param invocationId added as `x-sovra-invocation-id`
 */
export function headersInit(list: HeaderList, invocationId: string): HeadersInit {
  const record: Record<string, string> = {}
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = list[i] as string
    if (name === 'set-cookie') return [...headerPairs(list), ['x-sovra-invocation-id', invocationId]]
    record[name] = list[i + 1] as string
  }
  record['x-sovra-invocation-id'] = invocationId
  return record
}

/** Worker messages that belong to one job. */
export type JobMessage = Exclude<WorkerMessage, { type: 'ready' | 'init-error' | 'call' }>

/** What applying a worker message may need from the pool (one object per pool, not per message). */
export interface JobHooks {
  /** Tells the job's isolate that `n` more stream chunks were consumed. */
  ack(job: Job, n: number): void
  cancel(job: Job, reason: string): void
  /** The invocation is complete. */
  finish(job: Job): void
  timeoutError(): SovraError
}

/**
 * Applies one message from the isolate to its job: the response head (with the whole body, or a stream fed by
 * later chunks under flow control), chunks, the end, an error, and done (the invocation's end).
 * @param job the job the message is for
 * @param msg the message
 * @param hooks what the pool provides
 */
export function applyWorkerMessage(job: Job, msg: JobMessage, hooks: JobHooks): void {
  switch (msg.type) {
    case 'response': {
      job.status = msg.status
      let body: BodyInit | null = msg.body as Uint8Array<ArrayBuffer> | null
      if (!msg.end) {
        body = new ReadableStream<Uint8Array>({
          start: (controller) => {
            job.stream = controller
          },
          // With a high-water mark of 1, pull runs only when the queue is empty: everything sent was consumed.
          pull: () => {
            if (job.unacked > 0 && !job.finished) {
              hooks.ack(job, job.unacked)
              job.unacked = 0
            }
          },
          cancel: () => {
            job.stream = undefined
            hooks.cancel(job, 'the client went away')
          },
        }, { highWaterMark: 1 })
      }
      const settle = job.settleHead
      job.settleHead = undefined
      settle?.(new Response(body, { status: msg.status, statusText: msg.statusText, headers: headersInit(msg.headers, job.invocation.id) }))
      if (msg.done) hooks.finish(job)
      break
    }
    case 'chunk':
      // After a cancel the isolate may still have chunks on the way: they are dropped.
      if (job.stream === undefined) break
      job.unacked++
      job.stream.enqueue(msg.chunk)
      break
    case 'end':
      job.stream?.close()
      job.stream = undefined
      if (msg.done) hooks.finish(job)
      break
    case 'error': {
      const timedOut = Date.now() >= job.deadline
      const error = timedOut ? hooks.timeoutError() : toCallerError(msg.error)
      const outcome: Outcome = timedOut ? 'timeout' : 'error'
      if (job.settleEvent !== undefined) job.eventError = { error, outcome }
      else failJob(job, error, outcome)
      job.outcome = outcome
      job.error = msg.error
      break
    }
    case 'done':
      job.waitUntilErrors = msg.errors
      if (job.settleEvent !== undefined) {
        const settle = job.settleEvent
        job.settleEvent = undefined
        const failed = job.eventError
        job.status = failed === undefined ? 200 : failed.error.status
        settle(failed === undefined
          ? { ok: true, status: 200, outcome: 'ok', error: undefined, detail: undefined, noRetry: msg.noRetry }
          : { ok: false, status: failed.error.status, outcome: failed.outcome, error: failed.error, detail: job.error?.message ?? failed.error.message, noRetry: msg.noRetry })
      }
      hooks.finish(job)
      break
  }
}
