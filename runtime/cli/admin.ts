import type { Bucket } from '../core/ports.ts'
import type { Project } from '../config/resolve.ts'
import { DEFAULT_PORT } from '../hosts/local/host.ts'
import { deliveriesFor } from '../../triggers/object/match.ts'
import type { ObjectEvent } from '../core/handlers.ts'
import { createBucketProvider } from './storage.ts'
import { needsStore, openStore } from './store.ts'
import { dbEventQueue } from '../../infra/db/event-queue.ts'
import type { EventQueue } from '../../triggers/object/queue.ts'

/** The admin API base URL a command talks to: --url, else the default host address. */
export function adminUrl(url: string | undefined): string {
  return (url ?? `http://127.0.0.1:${DEFAULT_PORT}`).replace(/\/+$/, '')
}

/**
 * Calls the running host's admin API; undefined when no host answers (then the command works on the state itself).
 * @param url the admin base URL
 * @param path the path under it
 * @param init the request
 */
export async function callHost(url: string, path: string, init?: RequestInit): Promise<Response | undefined> {
  try {
    return await fetch(`${url}${path}`, init)
  } catch {
    return undefined
  }
}

/**
 * Opens the project's state directly (no host running): buckets, and the event queue when functions have object
 * triggers, so that writes here queue the same events a host would (delivered when a host starts).
 * @param project the project
 * @param state the state folder override
 */
export async function openLocalState(project: Project, state: string | undefined): Promise<{ buckets: (name: string) => Bucket; queue: EventQueue | undefined; close(): Promise<void> }> {
  const db = needsStore(project) ? await openStore(project, state === undefined ? {} : { state }) : undefined
  const queue = db === undefined ? undefined : dbEventQueue(db)
  const functions = project.functions.map((f) => ({ name: f.name, triggers: f.worker.object_triggers ?? [] }))
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
