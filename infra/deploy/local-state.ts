import type { Bucket } from '../../runtime/core/ports.ts'
import type { Project } from '../../runtime/config/resolve.ts'
import type { ObjectEvent } from '../../runtime/core/handlers.ts'
import { deliveriesFor } from '../../triggers/object/match.ts'
import type { EventQueue } from '../../triggers/object/queue.ts'
import { dbEventQueue } from '../db/event-queue.ts'
import { createBucketProvider, needsStore, openStore } from './project-state.ts'

/**
 * Opens the project's state directly (no host running): buckets, and the event queue when functions have object
 * triggers, so that writes here queue the same events a host would (delivered when a host starts).
 * @param project the project
 * @param state the state folder override
 */
export async function openLocalState(
  project: Project,
  state: string | undefined,
): Promise<{ buckets: (name: string) => Bucket; queue: EventQueue | undefined; close(): Promise<void> }> {
  const db = needsStore(project) ? await openStore(project, state === undefined ? {} : { state }) : undefined
  const queue = db === undefined ? undefined : dbEventQueue(db)
  const functions = project.functions.map((f) => ({ name: f.name, triggers: f.objectTriggers }))
  const stage = async (event: ObjectEvent): Promise<number[]> => {
    const deliveries = deliveriesFor(functions, [event])
    return queue === undefined || deliveries.length === 0 ? [] : (await queue.enqueue(deliveries, { staged: true })).ids
  }
  const buckets = createBucketProvider(project, {
    ...(state === undefined ? {} : { state }),
    sink: {
      stage,
      commit: async (ids) => queue?.release(ids as number[]),
      abort: async (ids, reason) => queue?.discard(ids as number[], reason),
    },
  })
  return { buckets, queue, close: async () => db?.close() }
}
