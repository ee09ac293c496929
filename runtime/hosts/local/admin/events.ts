import { Hono } from 'hono'

import { SovraError } from '../../../core/errors.ts'
import { normalizeRecords } from '../../../../triggers/object/normalize.ts'
import { checkBearer, MINIO_WEBHOOK_BEARER } from '../../../auth/bearer.ts'
import type { AdminEnv } from '../../app/host-app.ts'
import type { LocalAppOptions } from '../app.ts'

/**
 * `/_sovra/events`: MinIO's webhook (bearer MINIO_WEBHOOK_TOKEN; answered once the events are committed), the
 * queue by status, and replay of dead letters.
 * @param options the host's event intake and webhook token
 */
export function eventsAdmin(options: LocalAppOptions): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>()
  // MinIO probes the endpoint with HEAD before it sends events.
  app.get('/events/minio', () => new Response(null, { status: 200 }))

  app.post('/events/minio', async (c) => {
    const events = options.events
    if (events === undefined)
      throw new SovraError('ERR_NOT_FOUND', 'this host has no object triggers; no function takes MinIO events')
    checkBearer(c.req.header('authorization'), options.webhookToken, MINIO_WEBHOOK_BEARER)
    let body: unknown
    try {
      body = await c.req.json()
    } catch {
      throw new SovraError(
        'ERR_BAD_REQUEST',
        'the webhook body is not JSON; expected MinIO\'s {"EventName","Key","Records":[...]}',
      )
    }
    const normalized = normalizeRecords((body as { Records?: unknown } | null)?.Records, 'minio')
    // Answer only once the events are committed: MinIO retries a non-2xx delivery, so a crash loses nothing.
    const result = await events.ingest(normalized)
    return c.json({ received: normalized.length, ...result })
  })

  app.get('/events', async (c) => {
    if (options.events === undefined) return c.json([])
    const status = c.req.query('status')
    const valid = ['pending', 'running', 'done', 'dead']
    if (status !== undefined && !valid.includes(status))
      throw new SovraError('ERR_BAD_REQUEST', `status ${JSON.stringify(status)} is not one of ${valid.join(', ')}`)
    return c.json(
      await options.events.queue.list({
        ...(status === undefined ? {} : { status: status as 'dead' }),
        limit: Number(c.req.query('limit') ?? 100),
      }),
    )
  })

  app.post('/events/replay', async (c) => {
    if (options.events === undefined) throw new SovraError('ERR_NOT_FOUND', 'this host has no object-event queue')
    const body = (await c.req.json().catch(() => ({}))) as { ids?: unknown; all_dead?: unknown }
    const ids =
      body.all_dead === true
        ? ('all-dead' as const)
        : Array.isArray(body.ids) && body.ids.every((i) => Number.isInteger(i))
          ? (body.ids as number[])
          : undefined
    if (ids === undefined)
      throw new SovraError(
        'ERR_BAD_REQUEST',
        `expected {"ids":[<event id>...]} or {"all_dead":true}, received ${JSON.stringify(body)}`,
      )
    const replayed = await options.events.queue.replay(ids)
    options.events.dispatcher.wake()
    return c.json({ replayed })
  })

  return app
}
