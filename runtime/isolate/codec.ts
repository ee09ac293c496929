/**
 * Messages between the host thread and an isolate (worker thread). Plain structured-clone data; bodies travel as
 * Uint8Array with their buffers transferred, never copied twice.
 */
import type { ObjectEvent, Principal, TriggerKind } from '../core/index.ts'
import type { Binding } from '../bindings/registry.ts'

/**
 * Headers as one flat list, name then value (`[n1, v1, n2, v2, ...]`), like Node's `rawHeaders`: keeps repeated
 * headers such as Set-Cookie apart, and clones as one array instead of one per header.
 */
export type HeaderList = string[]

/**
 * Flattens header entries (a Headers object, pairs) into a {@link HeaderList}.
 * @param entries name/value pairs
 */
export function toHeaderList(entries: Iterable<[string, string]>): HeaderList {
  const out: string[] = []
  for (const [name, value] of entries) out.push(name, value)
  return out
}

/**
 * The pairs of a {@link HeaderList}, for the Headers constructor.
 * @param list the flat list
 */
export function headerPairs(list: HeaderList): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (let i = 0; i + 1 < list.length; i += 2) out.push([list[i] as string, list[i + 1] as string])
  return out
}

/** A binding the isolate reaches through the host: its kind's resolved settings (`type`, `env` name, ...). */
export type BindingSpec = Binding

/** What the worker needs to build `env` (values only; secrets never leave this path). */
export interface EnvSpec {
  vars: Record<string, unknown>
  secrets: Record<string, string>
  bindings?: BindingSpec[]
  /**
   * A binding needs the caller of each call (its kind has `perCaller`): the isolate then tracks the current
   * invocation and names it in every call message. Decided on the host (buildEnvSpec), so the isolate needs no
   * knowledge of the kinds.
   */
  perCaller?: boolean
}

/** Data the worker starts with (`workerData`). */
export interface WorkerInit {
  bundlePath: string
  /** The function and the bundle's version: the same for every invocation, so they are not sent with each. */
  function: string
  version: string
  env: EnvSpec
  /** Most chunks a stream may have in flight before the host acknowledges them. */
  streamWindow: number
  maxBodyBytes: number
}

/**
 * What every invocation message carries, flat: each nested object costs the structured clone (both threads) more
 * than its fields. The isolate rebuilds `ctx.invocation` from these and its init.
 */
interface InvocationMeta {
  id: number
  invocationId: string
  trigger: TriggerKind
  /** The verified caller; absent when the host has none (cron, object events, in-process calls). */
  principal?: Principal
  deadline: number
}

/** Host -> worker: run `fetch`. */
export interface FetchMessage extends InvocationMeta {
  type: 'fetch'
  method: string
  url: string
  headers: HeaderList
  body: Uint8Array | null
}

/** Host -> worker: run `scheduled` or `object`. */
export interface EventMessage extends InvocationMeta {
  type: 'event'
  handler: 'scheduled' | 'object'
  cron?: string
  scheduledTime?: number
  event?: ObjectEvent
}

/** Host -> worker: the caller went away or the deadline passed; abort the signal and stop streaming. */
export interface CancelMessage {
  type: 'cancel'
  id: number
  reason: string
}

/** Host -> worker: `n` more stream chunks were consumed (flow control). */
export interface AckMessage {
  type: 'ack'
  id: number
  n: number
}

/** Host -> worker: the answer to a binding call. */
export interface ResultMessage {
  type: 'result'
  callId: number
  ok: boolean
  value?: unknown
  error?: SerializedError
}

/** Host -> worker: no more work; close the port and let the thread end. */
export interface StopMessage {
  type: 'stop'
}

export type HostMessage = FetchMessage | EventMessage | CancelMessage | AckMessage | StopMessage | ResultMessage

/** Several messages sent as one: under load, one postMessage per event-loop turn instead of one per message. */
export interface BatchMessage<T> {
  type: 'batch'
  messages: T[]
}

/** An error as it crosses the thread boundary. */
export interface SerializedError {
  name: string
  message: string
  code?: string
  stack?: string
  details?: Record<string, unknown>
}

/** Worker -> host: the isolate loaded its bundle and is ready, or failed to. */
export type ReadyMessage = { type: 'ready'; handlers: string[] } | { type: 'init-error'; error: SerializedError }

/** Worker -> host: the response head, with the whole body when it was available at once (`end`). */
export interface ResponseMessage {
  type: 'response'
  id: number
  status: number
  statusText: string
  headers: HeaderList
  /** The whole body when `end`: a string as the function gave it (the host takes it as it is), or bytes. */
  body: string | Uint8Array | null
  /** The body is complete (no chunk messages follow). */
  end: boolean
  /** The invocation is complete (body sent, every waitUntil settled). */
  done: boolean
}

export interface ChunkMessage {
  type: 'chunk'
  id: number
  chunk: Uint8Array
}

export interface EndMessage {
  type: 'end'
  id: number
  done: boolean
}

/** Worker -> host: the handler failed (before a response head when `afterHead` is false). */
export interface ErrorMessage {
  type: 'error'
  id: number
  error: SerializedError
  afterHead: boolean
}

/** Worker -> host: the invocation finished; `errors` are waitUntil rejections, `noRetry` is the scheduled flag. */
export interface DoneMessage {
  type: 'done'
  id: number
  errors: SerializedError[]
  noRetry: boolean
}

/** Worker -> host: a function called a binding method (`env.DOCS.put(...)`); answered by a result message. */
export interface CallMessage {
  type: 'call'
  callId: number
  binding: string
  method: string
  args: unknown[]
  /**
   * The message id of the invocation that made the call, when the isolate tracks it (`EnvSpec.perCaller`) and the
   * call was made within one. The host looks the invocation up among the ones that isolate runs and passes its
   * principal to the binding: the function names an invocation, never a principal.
   */
  invocation?: number
}

/**
 * Worker -> host: something failed outside any handler's control flow (a promise rejected with no handler), so no
 * invocation reports it. The worker names the invocations it was running, and the last one it started.
 */
export interface FaultMessage {
  type: 'fault'
  kind: 'unhandled-rejection'
  error: SerializedError
  /** Invocation ids running in the isolate when it happened. */
  running: string[]
  /** The invocation the isolate started last (a timer it left may fire after it ended). */
  last: string | undefined
}

/**
 * Worker -> host: one line the function wrote with `console.log` (`info`, `debug`, `trace`, `warn`, `error`), its
 * arguments formatted as Node's console formats them. The worker names the invocation it belongs to when it can tell
 * (see worker-main.ts), and the request's trace id.
 */
export interface LogMessage {
  type: 'log'
  /** The console method called. */
  method: 'log' | 'info' | 'debug' | 'trace' | 'warn' | 'error'
  message: string
  invocation?: string
  /** `traceparent`'s trace id, else `x-request-id`, of the request being served. */
  trace?: string
}

export type WorkerMessage =
  | ReadyMessage
  | ResponseMessage
  | ChunkMessage
  | EndMessage
  | ErrorMessage
  | DoneMessage
  | CallMessage
  | FaultMessage
  | LogMessage

/**
 * Queues messages for one port and sends them at the end of the event-loop turn (or every
 * {@link OUTBOX_FLUSH_AT}), as a batch when there are several.
 * postMessage has a fixed cost (a clone and a wake-up of the other thread) that dominates small invocations; at 50
 * concurrent requests one batch carries many of them. Order is kept.
 */
/**
 * A batch is sent as soon as it holds this many messages, without waiting for the end of the turn: the other
 * thread starts on the first ones while this one prepares the rest. Waiting for whole turns made the two threads
 * take turns (lock-step); measured on 2 cores with 50 connections: 1 -> 4.5k, 8 -> 6.3k, whole turn -> 4.4k req/s.
 * Since (2026-11-30, lighter messages, paired runs of bench/ab.ts, concurrency 64): each postMessage that wakes the
 * other thread costs the host several microseconds of CPU, so fewer, larger batches pay: against 8, 16 saved 3.5
 * µs CPU per request, 32 saved 14 and 64 8.5 (medians of 6 rounds; req/s +4%, +15%, +7%). Batches average ~7
 * messages a turn at 50 connections, so 32 rarely waits for more than the turn.
 */
export const OUTBOX_FLUSH_AT = 32

export class Outbox<T> {
  #messages: T[] = []
  #transfer: ArrayBuffer[] = []
  #scheduled = false
  readonly #send: (message: T | BatchMessage<T>, transfer: ArrayBuffer[]) => void

  /** @param send posts one message (or batch) with its transfer list */
  constructor(send: (message: T | BatchMessage<T>, transfer: ArrayBuffer[]) => void) {
    this.#send = send
  }

  /**
   * Queues a message.
   * @param message the message
   * @param transfer buffers to move with it
   */
  push(message: T, transfer?: readonly ArrayBuffer[]): void {
    this.#messages.push(message)
    if (transfer !== undefined) for (const t of transfer) this.#transfer.push(t)
    if (this.#messages.length >= OUTBOX_FLUSH_AT) return this.flush()
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(this.flush)
    }
  }

  /** Sends what is queued now. */
  readonly flush = (): void => {
    this.#scheduled = false
    const messages = this.#messages
    if (messages.length === 0) return
    const transfer = this.#transfer
    this.#messages = []
    this.#transfer = []
    this.#send(messages.length === 1 ? (messages[0] as T) : { type: 'batch', messages }, transfer)
  }
}

/**
 * Joins byte chunks into one array (the chunk itself when there is only one).
 * @param chunks the parts
 * @param total their summed length
 */
export function concatBytes(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array
  const out = new Uint8Array(total)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.byteLength
  }
  return out
}

/**
 * Serialises anything thrown so it survives structured clone, keeping a SovraError's code.
 * @param error what was thrown
 */
export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const e = error as Error & { code?: unknown; details?: unknown }
    const out: SerializedError = { name: e.name, message: e.message }
    if (typeof e.code === 'string') out.code = e.code
    if (e.stack !== undefined) out.stack = e.stack
    if (typeof e.details === 'object' && e.details !== null) out.details = e.details as Record<string, unknown>
    return out
  }
  return { name: 'NonError', message: typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error)) }
}
