import type { CallContext } from '../bindings/define.ts'
import type { Principal, TriggerKind } from '../core/index.ts'
import type { IsolateSettings, Limits } from '../config/schema.ts'
import type { FunctionBundle } from './bundle.ts'
import type { EnvSpec, HeaderList, LogMessage, SerializedError } from './codec.ts'
import type { InvocationRecord } from './job.ts'
import type { SpareIsolates } from './spares.ts'

/**
 * Which invocation an isolate event concerns, as far as the host can tell: threads share no async context with the
 * host, so an event outside any handler's control flow is matched by what the isolate was running.
 */
export interface Attribution {
  /** The one that timed out, the only one running, or (none running) the one started last in that isolate. */
  invocationId?: string
  /** Every invocation running at the time, when there were several. */
  invocationIds?: string[]
  /** How the invocation was found. */
  attributedTo?: 'deadline' | 'running' | 'last-started'
}

/** Isolate lifecycle events, for metrics and logs. */
export interface IsolateEvent extends Attribution {
  function: string
  /** `fault`: something failed outside any handler (reason `unhandled-rejection`); the isolate carries on. */
  event: 'spawn' | 'ready' | 'exit' | 'init-error' | 'fault'
  reason?: string
  /** ms from spawn to ready, on 'ready'. */
  startMs?: number
  /** The bundle version the isolate ran, on exit, fault and init-error. */
  version?: string
  /** What failed, on fault, init-error and exit after a crash (with its stack: for the log, never for callers). */
  error?: SerializedError
}

/** One line a function wrote with `console.*`, as the host logs it (runtime/hosts/local/observer.ts). */
export interface FunctionLogLine {
  function: string
  /** The bundle version of the isolate that wrote it. */
  version: string
  /** The console method called: `log`, `info`, `debug`, `trace`, `warn` or `error`. */
  method: LogMessage['method']
  message: string
  /** The invocation it belongs to, when the isolate could tell (absent at module load). */
  invocationId?: string
  /** The request's trace id (`traceparent`, else `x-request-id`); absent for other triggers. */
  traceId?: string
}

/** Callbacks a host passes to observe a pool. */
export interface PoolObserver {
  onInvocation?(record: InvocationRecord): void
  onIsolate?(event: IsolateEvent): void
  /**
   * A console line of the function. Without this callback the line is written as text to the host's stdout
   * (`warn` and `error`: stderr), as Node writes a worker thread's console.
   */
  onLog?(line: FunctionLogLine): void
}

/**
 * Runs one binding call on the host; returns a structured-clone-safe value and buffers to transfer. `call` says
 * who made it (see CallContext).
 */
export type BindingHost = (
  binding: string,
  method: string,
  args: unknown[],
  call: CallContext,
) => Promise<{ value: unknown; transfer: ArrayBuffer[] }>

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

/** Per-call options for `IsolatePool.fetch` and `IsolatePool.run`. */
export interface CallOptions {
  invocationId?: string
  trigger?: TriggerKind
  principal?: Principal
  /** Aborts the invocation (e.g. the HTTP client went away). See also `IsolatePool.cancel`. */
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
