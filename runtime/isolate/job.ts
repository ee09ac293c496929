import { errorToResponse, SovraError, ERROR_CODES, type ErrorCode, type Invocation } from '../core/index.ts'
import type { EventMessage, FetchMessage, SerializedError } from './codec.ts'
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
  slot: Slot<Job> | undefined
}

/**
 * A new job, not yet admitted.
 * @param message what the isolate will run (its id and deadline are the job's)
 * @param invocation the invocation it is (the message carries its id and trigger only)
 * @param admitted when it was admitted, ms since the epoch
 * @param fields extra fields for the invocation record
 */
export function createJob(
  message: FetchMessage | EventMessage,
  invocation: Invocation,
  admitted: number,
  fields: Record<string, unknown> | undefined,
): Job {
  return {
    id: message.id,
    message,
    fields,
    transfer: [],
    invocation,
    admitted,
    dispatched: undefined,
    deadline: message.deadline,
    timer: undefined,
    settleHead: undefined,
    settleEvent: undefined,
    stream: undefined,
    unacked: 0,
    status: undefined,
    outcome: 'ok',
    error: undefined,
    eventError: undefined,
    waitUntilErrors: [],
    finished: false,
    slot: undefined,
  }
}

/**
 * The record observers get for a finished job.
 * @param job the job
 * @param end when it finished, ms since the epoch
 */
export function invocationRecord(job: Job, end: number): InvocationRecord {
  return {
    invocation: job.invocation,
    status: job.status ?? 500,
    outcome: job.outcome,
    durationMs: end - job.admitted,
    queuedMs: (job.dispatched ?? end) - job.admitted,
    error: job.error,
    waitUntilErrors: job.waitUntilErrors,
    fields: job.fields,
  }
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
    const res = errorToResponse(error, job.invocation.id)
    // The version that failed (a canary's 500s name it), as a response it answered would.
    res.headers.set('x-sovra-version', job.invocation.version)
    settle(res)
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
