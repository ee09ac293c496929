import type { CallContext } from '../bindings/define.ts'
import type { Principal, TriggerKind } from '../core/index.ts'
import type { IsolateSettings, Limits } from '../config/schema.ts'
import type { FunctionBundle } from './bundle.ts'
import type { EnvSpec, HeaderList } from './codec.ts'
import type { InvocationRecord } from './job.ts'
import type { SpareIsolates } from './spares.ts'

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
