import type { ObjectEvent } from '../../runtime/core/handlers.ts'

/** An event waiting for, or being handled by, one function. */
export interface QueuedEvent {
  id: number
  function: string
  event: ObjectEvent
  attempts: number
  status: 'staged' | 'pending' | 'running' | 'done' | 'dead'
  lastError: string | undefined
  createdAt: string
}

/** What is put into the queue: one event for one function. */
export interface Delivery {
  function: string
  event: ObjectEvent
}

/**
 * Where a store's object events go when they must survive a crash: staged before the write becomes visible,
 * committed after it, aborted if it failed (the fs bucket uses it).
 */
export interface EventSink {
  stage(event: ObjectEvent): Promise<unknown>
  commit(token: unknown): Promise<void>
  abort(token: unknown, reason: string): Promise<void>
}

/** The durable queue of object events (the SQL store implements it: infra/db/event-queue.ts). */
export interface EventQueue {
  /**
   * Stores deliveries, dropping ones already stored (same function and identity); resolves once committed. Staged
   * ones wait for {@link EventQueue.release} (the write they describe is not visible yet).
   */
  enqueue(
    deliveries: Delivery[],
    options?: { staged?: boolean },
  ): Promise<{ inserted: number; duplicates: number; ids: number[] }>
  /** Staged events become pending. */
  release(ids: number[]): Promise<void>
  /** Staged events whose write never happened are closed (done, with the reason). */
  discard(ids: number[], reason: string): Promise<void>
  /**
   * Marks due events running and returns them: per (function, object) only the oldest pending one, and none
   * while another of the same object runs, so an older event never runs after a newer one.
   */
  claim(now: number, limit: number): Promise<QueuedEvent[]>
  complete(id: number): Promise<void>
  /** Schedules a retry at `retryAt`, or dead-letters when `retryAt` is undefined. */
  fail(id: number, error: string, retryAt: number | undefined): Promise<void>
  /** Events interrupted by a crash (running) go back to pending; returns how many. */
  recover(): Promise<number>
  list(filter: { status?: QueuedEvent['status']; limit?: number }): Promise<QueuedEvent[]>
  /** Puts dead events back to pending with attempts reset; returns how many. */
  replay(ids: number[] | 'all-dead'): Promise<number>
  /** How many events are in each status (for metrics). */
  counts(): Promise<Record<QueuedEvent['status'], number>>
}
