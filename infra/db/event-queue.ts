import type { ObjectEvent } from '../../runtime/core/handlers.ts'
import type { Db } from '../../runtime/core/ports.ts'
import { dedupeKey, orderKey } from '../../triggers/object/match.ts'
import type { Delivery, EventQueue, QueuedEvent } from '../../triggers/object/queue.ts'

interface Row {
  id: number | string
  function: string
  payload: ObjectEvent | string
  attempts: number
  status: QueuedEvent['status']
  last_error: string | null
  created_at: Date | string
}

function toQueued(r: Row): QueuedEvent {
  return {
    id: Number(r.id),
    function: r.function,
    event: typeof r.payload === 'string' ? (JSON.parse(r.payload) as ObjectEvent) : r.payload,
    attempts: r.attempts,
    status: r.status,
    lastError: r.last_error ?? undefined,
    createdAt: new Date(r.created_at).toISOString(),
  }
}

let arrival = 0

/**
 * The durable object-event queue in the SQL store (`sovra_events`): at-least-once, deduplicated per function on
 * the event's identity, in order per object, with retries and dead letters. One dispatcher per database.
 * @param db the store (migrated)
 */
export function dbEventQueue(db: Db): EventQueue {
  return {
    async enqueue(deliveries: Delivery[], options: { staged?: boolean } = {}) {
      let inserted = 0
      const ids: number[] = []
      await db.tx(async (t) => {
        for (const d of deliveries) {
          const objectKey = `${d.event.bucket}/${d.event.key}`
          const sequencer = orderKey(d.event.sequencer, Date.now() * 1000 + (arrival++ % 1000))
          // An event older than one of the same object that already ran would run out of order: keep it, done.
          // One statement per delivery: an event older than one of the same object that already ran (or runs) would
          // run out of order, so it is stored as done/superseded instead of pending.
          const r = await t.query<{ id: number | string; status: string }>(
            `INSERT INTO sovra_events (function, source, dedupe_key, object_key, sequencer, payload, status, last_error)
             SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::jsonb,
                    CASE WHEN s.stale THEN 'done' ELSE $7::text END,
                    CASE WHEN s.stale THEN 'superseded: a newer event of this object already ran' END
             FROM (SELECT EXISTS (SELECT 1 FROM sovra_events WHERE function = $1::text AND object_key = $4::text
                                  AND status IN ('done', 'running') AND sequencer > $5::text) AS stale) s
             ON CONFLICT (function, dedupe_key) DO NOTHING RETURNING id, status`,
            [
              d.function,
              d.event.source,
              dedupeKey(d.event),
              objectKey,
              sequencer,
              JSON.stringify(d.event),
              options.staged === true ? 'staged' : 'pending',
            ],
          )
          inserted += r.rows.length
          for (const row of r.rows) if (row.status !== 'done') ids.push(Number(row.id))
        }
      })
      return { inserted, duplicates: deliveries.length - inserted, ids }
    },

    async claim(now, limit) {
      const { rows } = await db.query<Row>(
        `WITH candidates AS (
           SELECT e.id FROM sovra_events e
           WHERE e.status = 'pending' AND e.next_at <= $1
             AND NOT EXISTS (
               SELECT 1 FROM sovra_events o
               WHERE o.function = e.function AND o.object_key = e.object_key AND o.id <> e.id
                 AND (o.status = 'running' OR (o.status = 'pending' AND (o.sequencer < e.sequencer OR (o.sequencer = e.sequencer AND o.id < e.id)))))
           ORDER BY e.sequencer, e.id
           LIMIT $2)
         UPDATE sovra_events SET status = 'running', attempts = attempts + 1, updated_at = now()
         WHERE id IN (SELECT id FROM candidates)
         RETURNING id, function, payload, attempts, status, last_error, created_at`,
        [new Date(now).toISOString(), limit],
      )
      return rows.map(toQueued).sort((a, b) => a.id - b.id)
    },

    async release(ids) {
      if (ids.length === 0) return
      await db.query(
        "UPDATE sovra_events SET status = 'pending', next_at = now(), updated_at = now() WHERE status = 'staged' AND id = ANY($1::bigint[])",
        [ids],
      )
    },

    async discard(ids, reason) {
      if (ids.length === 0) return
      await db.query(
        "UPDATE sovra_events SET status = 'done', last_error = $2, updated_at = now() WHERE status = 'staged' AND id = ANY($1::bigint[])",
        [ids, reason],
      )
    },

    async complete(id) {
      await db.query("UPDATE sovra_events SET status = 'done', last_error = NULL, updated_at = now() WHERE id = $1", [
        id,
      ])
    },

    async fail(id, error, retryAt) {
      if (retryAt === undefined) {
        await db.query("UPDATE sovra_events SET status = 'dead', last_error = $2, updated_at = now() WHERE id = $1", [
          id,
          error,
        ])
      } else {
        await db.query(
          "UPDATE sovra_events SET status = 'pending', last_error = $2, next_at = $3, updated_at = now() WHERE id = $1",
          [id, error, new Date(retryAt).toISOString()],
        )
      }
    },

    async recover() {
      const r = await db.query(
        "UPDATE sovra_events SET status = 'pending', updated_at = now() WHERE status = 'running' RETURNING id",
      )
      return r.rows.length
    },

    async list(filter) {
      const { rows } = await db.query<Row>(
        `SELECT id, function, payload, attempts, status, last_error, created_at FROM sovra_events
         WHERE ($1::text IS NULL OR status = $1) ORDER BY id DESC LIMIT $2`,
        [filter.status ?? null, filter.limit ?? 100],
      )
      return rows.map(toQueued)
    },

    async counts() {
      const { rows } = await db.query<{ status: QueuedEvent['status']; n: string | number }>(
        'SELECT status, count(*) AS n FROM sovra_events GROUP BY status',
      )
      const out = { staged: 0, pending: 0, running: 0, done: 0, dead: 0 }
      for (const r of rows) out[r.status] = Number(r.n)
      return out
    },

    async replay(ids) {
      const r =
        ids === 'all-dead'
          ? await db.query(
              "UPDATE sovra_events SET status = 'pending', attempts = 0, next_at = now(), updated_at = now() WHERE status = 'dead' RETURNING id",
            )
          : await db.query(
              "UPDATE sovra_events SET status = 'pending', attempts = 0, next_at = now(), updated_at = now() WHERE status = 'dead' AND id = ANY($1::bigint[]) RETURNING id",
              [ids],
            )
      return r.rows.length
    },
  }
}
