import type { ObjectEvent } from '../../runtime/core/handlers.ts'

/** An event waiting for, or being handled by, one function. */
export interface QueuedEvent {
  id: number
  function: string
  event: ObjectEvent
  attempts: number
  status: 'pending' | 'running' | 'done' | 'dead'
  lastError: string | undefined
  createdAt: string
}

/** What is put into the queue: one event for one function. */
export interface Delivery {
  function: string
  event: ObjectEvent
}

/** The durable queue of object events (the SQL store implements it: infra/db/event-queue.ts). */
export interface EventQueue {
  /** Stores deliveries, dropping ones already stored (same function and identity); resolves once committed. */
  enqueue(deliveries: Delivery[]): Promise<{ inserted: number; duplicates: number }>
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
