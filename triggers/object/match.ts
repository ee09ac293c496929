import type { ObjectEvent } from '../../runtime/core/handlers.ts'
import { DEFAULT_MAX_RETRIES } from './dispatcher.ts'

/** One `object_triggers` entry of a function. */
export interface ObjectTrigger {
  bucket: string
  events?: Array<'created' | 'removed'> | undefined
  prefix?: string | undefined
  suffix?: string | undefined
  /** Retries after the first attempt before the event is dead-lettered (default {@link DEFAULT_MAX_RETRIES}). */
  max_retries?: number | undefined
}

/**
 * Whether an event is for this trigger: same bucket, an event type it lists (default both), key prefix and suffix.
 * @param trigger the trigger
 * @param event the event
 */
export function matches(trigger: ObjectTrigger, event: ObjectEvent): boolean {
  return (
    trigger.bucket === event.bucket &&
    (trigger.events === undefined || trigger.events.includes(event.type)) &&
    event.key.startsWith(trigger.prefix ?? '') &&
    event.key.endsWith(trigger.suffix ?? '')
  )
}

/**
 * The identity of an event for deduplication: bucket, key, version or etag, sequencer and type. The same
 * notification delivered twice (MinIO retries from its queue_dir) has the same identity.
 * @param event the event
 */
export function dedupeKey(event: ObjectEvent): string {
  // JSON keeps the parts apart unambiguously (and PostgreSQL text cannot hold NUL separators).
  return JSON.stringify([
    event.bucket,
    event.key,
    event.versionId ?? event.etag ?? '',
    event.sequencer ?? '',
    event.type,
  ])
}

/**
 * A sequencer that compares as a string in event order: S3 sequencers are hex of varying length.
 * @param sequencer the event's sequencer
 * @param fallback used when the store sent none (arrival order)
 */
export function orderKey(sequencer: string | undefined, fallback: number): string {
  const hex =
    sequencer !== undefined && /^[0-9a-fA-F]+$/.test(sequencer) ? sequencer.toLowerCase() : fallback.toString(16)
  return hex.padStart(32, '0')
}

/**
 * The deliveries for events: one per (function, event) where one of the function's object_triggers matches.
 * @param functions each function's name and triggers
 * @param events the events
 */
export function deliveriesFor(
  functions: ReadonlyArray<{ name: string; triggers: readonly ObjectTrigger[] }>,
  events: readonly ObjectEvent[],
): Array<{ function: string; event: ObjectEvent }> {
  return events.flatMap((event) =>
    functions.filter((f) => f.triggers.some((t) => matches(t, event))).map((f) => ({ function: f.name, event })),
  )
}

/**
 * The retries an event gets: the `max_retries` of the trigger that matched it (default {@link DEFAULT_MAX_RETRIES}).
 * When several triggers of one function match one event, the event is still delivered once, so the largest wins:
 * no trigger gets fewer retries than it asked for.
 * @param triggers one function's object_triggers
 * @param event the event
 */
export function maxRetriesFor(triggers: readonly ObjectTrigger[], event: ObjectEvent): number {
  const matched = triggers.filter((t) => matches(t, event)).map((t) => t.max_retries ?? DEFAULT_MAX_RETRIES)
  return matched.length === 0 ? DEFAULT_MAX_RETRIES : Math.max(...matched)
}
