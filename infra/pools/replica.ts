import type { PoolConfig } from '../../runtime/config/pools.ts'

/** What a replica's `/v1/status` reports (polled by the scaler). */
export interface ReplicaStatus {
  busy: number
  slots: number
  queue: { interactive: number; batch: number }
  p95_ms: { interactive: number | null; batch: number | null }
}

/** Lifecycle of a replica as the router and scaler see it. Traffic goes only to `ready` replicas. */
export type ReplicaState = 'starting' | 'ready' | 'draining' | 'stopped' | 'failed'

/** One replica of a pool: a local child process or a remote `sovra pool serve`. */
export interface Replica {
  readonly id: string
  /** Base URL, known once the process listens. */
  url: string | undefined
  state: ReplicaState
  /** Requests the router has sent and not yet seen answered. */
  outstanding: number
  /** Operations from `/healthz` (chat, embed, classify). */
  operations: string[]
  modelDigest: string | undefined
  /** The last `/v1/status`, if polled. */
  status: ReplicaStatus | undefined
  /** When it became ready (epoch ms), for start-to-ready timings. */
  readyAt: number | undefined
  startedAt: number
}

/** A pool and its current replicas, as the router reads it. */
export interface PoolView {
  config: PoolConfig
  replicas: readonly Replica[]
}

/** Where the router finds pools (the local scaler, or a static list of endpoints). */
export interface PoolDirectory {
  pools(): readonly PoolView[]
}
