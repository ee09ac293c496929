import type { PoolConfig } from '../../runtime/config/pools.ts'
import type { Logger } from '../../runtime/core/observe.ts'
import type { TierOrder } from '../../runtime/core/tiers.ts'
import type { OutcomeWindow } from '../../triggers/http/outcome-window.ts'
import type { Admission, WorkClass } from './admission.ts'
import type { Engine } from './engine.ts'
import type { PoolMetrics } from './pool-metrics.ts'

/** Default deadline of a request that names none. */
export const DEFAULT_DEADLINE_MS = 300_000

/** The structured log a replica writes (the core's Logger port; tests capture it). */
export type PoolLog = Logger

/** What the request handlers share once the model is loaded and warm. */
export interface ReplicaState {
  pool: PoolConfig
  tiers: TierOrder
  replica: string
  engine: Engine
  admission: Admission
  metrics: PoolMetrics
  latency: Record<WorkClass, OutcomeWindow>
  log: PoolLog
  /** Keeps work that outlives its handler (an SSE stream still generating) in the shutdown drain. */
  track(work: Promise<unknown>): void
}

/**
 * One replica as its HTTP app sees it: what is fixed at start, and what loading the model and draining change.
 * The server that owns the replica mutates `state`, `loadError` and `closing`; the app only reads them.
 */
export interface PoolReplica {
  readonly pool: PoolConfig
  /** This replica's id, reported in every response. */
  readonly replica: string
  readonly admission: Admission
  readonly latency: Record<WorkClass, OutcomeWindow>
  /** Set once the engine is loaded and warm. */
  state: ReplicaState | undefined
  /** Set when loading the engine failed. */
  loadError: Error | undefined
  /** True once shutdown began: inference is refused, health answers 503 `draining`. */
  closing: boolean
  /** Keeps a request's work in the shutdown drain until it settles. */
  track(work: Promise<unknown>): void
}
