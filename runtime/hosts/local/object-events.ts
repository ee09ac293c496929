import type { ObjectEvent } from '../../core/handlers.ts'
import type { Bucket } from '../../core/ports.ts'
import { ObjectDispatcher, DEFAULT_MAX_RETRIES } from '../../../triggers/object/dispatcher.ts'
import { deliveriesFor, maxRetriesFor, type ObjectTrigger } from '../../../triggers/object/match.ts'
import type { EventQueue, EventSink } from '../../../triggers/object/queue.ts'
import type { FunctionSet } from './functions.ts'
import type { HostLogger } from './observer.ts'

/** The durable object-event queue, and delivery settings. */
export interface EventOptions {
  queue: EventQueue
  backoffMs?: number
  pollMs?: number
  concurrency?: number
}

/**
 * A sink that forwards to whatever `get` returns when an event happens, and does nothing while it returns
 * undefined: buckets are created before the host whose queue their events go to.
 * @param get the current sink
 */
export function lateSink(get: () => EventSink | undefined): EventSink {
  return {
    stage: async (event) => (await get()?.stage(event)) ?? [],
    commit: async (token) => get()?.commit(token),
    abort: async (token, reason) => get()?.abort(token, reason),
  }
}

/**
 * The object-event side of a host: matches events to functions' object_triggers, queues them durably and
 * delivers them through the functions' isolates.
 */
export class ObjectEvents {
  readonly queue: EventQueue
  readonly dispatcher: ObjectDispatcher
  readonly #functions: FunctionSet

  constructor(functions: FunctionSet, options: EventOptions, log: HostLogger) {
    this.#functions = functions
    this.queue = options.queue
    this.dispatcher = new ObjectDispatcher({
      queue: options.queue,
      ...(options.backoffMs === undefined ? {} : { backoffMs: options.backoffMs }),
      ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
      // Each event gets the retries of the trigger that matched it, not those of the function's first trigger.
      maxRetries: (fn, event) => {
        const loaded = functions.get(fn)
        return loaded === undefined ? DEFAULT_MAX_RETRIES : maxRetriesFor(loaded.config.objectTriggers, event)
      },
      async run(fn, event) {
        const loaded = functions.get(fn)
        if (loaded === undefined) return { ok: false, error: `function "${fn}" is not loaded` }
        const pool = loaded.versions?.pick(undefined, {}) ?? loaded.pool
        const r = await pool.run('object', { event }, { trigger: 'object' })
        return { ok: r.ok, error: r.detail }
      },
      onAttempt(item, outcome, error) {
        if (outcome === 'done') return
        const fields = {
          event_id: item.id,
          function: item.function,
          bucket: item.event.bucket,
          key: item.event.key,
          attempts: item.attempts,
          error,
        }
        if (outcome === 'dead') log.error(fields, 'object event dead-lettered')
        else log.warn(fields, 'object event will be retried')
      },
      onError: (error) => log.error({ error: String(error) }, 'object event queue failed'),
    })
  }

  /** The durable sink for fs-bucket writes: events staged before the write is visible, released after it. */
  sink(): EventSink {
    return {
      stage: async (event) => {
        const deliveries = deliveriesFor(this.#triggers(), [event])
        return deliveries.length === 0 ? [] : (await this.queue.enqueue(deliveries, { staged: true })).ids
      },
      commit: async (ids) => {
        await this.queue.release(ids as number[])
        this.dispatcher.wake()
      },
      abort: (ids, reason) => this.queue.discard(ids as number[], reason),
    }
  }

  /**
   * Resolves events left staged by a crash between queueing and writing: released when the object is as the event
   * says (created with that etag, or removed), discarded otherwise.
   * @param buckets the adapters to look at
   */
  async recoverStaged(
    buckets: ((name: string) => Bucket) | undefined,
  ): Promise<{ released: number; discarded: number }> {
    const staged = await this.queue.list({ status: 'staged', limit: 100_000 })
    const release: number[] = []
    const discard: number[] = []
    for (const item of staged) {
      const head = buckets === undefined ? null : await buckets(item.event.bucket).head(item.event.key)
      const happened = item.event.type === 'removed' ? head === null : head !== null && head.etag === item.event.etag
      ;(happened ? release : discard).push(item.id)
    }
    await this.queue.release(release)
    await this.queue.discard(discard, 'the write was interrupted before the object changed')
    return { released: release.length, discarded: discard.length }
  }

  #triggers(): Array<{ name: string; triggers: readonly ObjectTrigger[] }> {
    return this.#functions.all().map((f) => ({ name: f.config.name, triggers: f.config.objectTriggers }))
  }

  /**
   * Queues the events for every function whose object_triggers match them; resolves once they are committed.
   * @param events normalised events
   */
  async ingest(events: readonly ObjectEvent[]): Promise<{ matched: number; inserted: number; duplicates: number }> {
    const deliveries = deliveriesFor(this.#triggers(), events)
    if (deliveries.length === 0) return { matched: 0, inserted: 0, duplicates: 0 }
    const r = await this.queue.enqueue(deliveries)
    this.dispatcher.wake()
    return { matched: deliveries.length, ...r }
  }
}
