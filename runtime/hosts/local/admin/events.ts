import { Hono } from 'hono'

import { SovraError } from '../../../core/errors.ts'
import { normalizeBatch } from '../../../../triggers/object/normalize.ts'
import { checkBearer, MINIO_WEBHOOK_BEARER } from '../../../auth/bearer.ts'
import type { AdminEnv } from '../../app/host-app.ts'
import type { LocalAppOptions } from '../app.ts'

/**
 * The largest webhook body taken by default: MinIO posts one record per call (a few KiB: a key is at most 1 KiB,
 * user metadata 2 KiB), so 1 MiB leaves room for batches of S3-style records and refuses uploads that only cost
 * memory.
 */
export const DEFAULT_WEBHOOK_MAX_BYTES = 1024 * 1024

/**
 * The webhook body limit from `SOVRA_WEBHOOK_MAX_BYTES`: a positive whole number of bytes, default
 * {@link DEFAULT_WEBHOOK_MAX_BYTES}.
 * @param value the variable's value, if set
 */
export function resolveWebhookMaxBytes(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return DEFAULT_WEBHOOK_MAX_BYTES
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 1)
    throw new SovraError(
      'ERR_CONFIG',
      `SOVRA_WEBHOOK_MAX_BYTES: expected a positive whole number of bytes (default ${DEFAULT_WEBHOOK_MAX_BYTES}), received ${JSON.stringify(value)}`,
    )
  return n
}

/**
 * Reads a request body as text, refusing it with ERR_BODY_TOO_LARGE (413) as soon as it is over `limit` bytes: a
 * Content-Length over the limit before anything is read, a longer (chunked) body at the chunk that crosses it,
 * so no more than `limit` bytes are ever held.
 * @param request the request
 * @param limit the most bytes taken
 */
async function readCapped(request: Request, limit: number): Promise<string> {
  const tooLarge = (received: string): SovraError =>
    new SovraError(
      'ERR_BODY_TOO_LARGE',
      `the webhook body is over the limit of ${limit} bytes (SOVRA_WEBHOOK_MAX_BYTES); received ${received}. MinIO posts one record of a few KiB per call`,
      { details: { limit } },
    )
  const length = request.headers.get('content-length')
  if (length !== null && Number(length) > limit) throw tooLarge(`content-length ${length}`)
  if (request.body === null) return ''
  const parts: Uint8Array[] = []
  let total = 0
  for await (const chunk of request.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength
    if (total > limit) throw tooLarge(`more than ${limit} bytes`)
    parts.push(chunk)
  }
  return Buffer.concat(parts, total).toString('utf8')
}

/**
 * `/_sovra/events`: MinIO's webhook (bearer MINIO_WEBHOOK_TOKEN; answered once the events are committed), the
 * queue by status, and replay of dead letters.
 * @param options the host's event intake, webhook token and body limit
 */
export function eventsAdmin(options: LocalAppOptions): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>()
  const maxBytes = options.webhookMaxBytes ?? DEFAULT_WEBHOOK_MAX_BYTES
  // MinIO probes the endpoint with HEAD before it sends events.
  app.get('/events/minio', () => new Response(null, { status: 200 }))

  app.post('/events/minio', async (c) => {
    const events = options.events
    if (events === undefined)
      throw new SovraError('ERR_NOT_FOUND', 'this host has no object triggers; no function takes MinIO events')
    // Before the body is read: a caller without the token costs no upload.
    checkBearer(c.req.header('authorization'), options.webhookToken, MINIO_WEBHOOK_BEARER)
    const text = await readCapped(c.req.raw, maxBytes)
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      throw new SovraError(
        'ERR_BAD_REQUEST',
        `the webhook body is not JSON; expected MinIO's {"EventName","Key","Records":[...]}, received ${JSON.stringify(text.slice(0, 80))}`,
      )
    }
    const {
      events: normalized,
      ignored,
      rejected,
    } = normalizeBatch((body as { Records?: unknown } | null)?.Records, 'minio')
    // MinIO retries a non-2xx answer from its queue_dir forever, so a record that can never be queued (a NUL in
    // its key) must not fail the call: it is refused alone, named in the answer and the log, and the rest go on.
    if (rejected.length > 0) options.log.warn({ rejected }, 'MinIO webhook: records refused; the rest were queued')
    if (ignored.length > 0)
      options.log.info(
        { ignored: ignored.length, event_names: [...new Set(ignored.map((r) => r.eventName))] },
        'MinIO webhook: records of other event types skipped (functions take ObjectCreated and ObjectRemoved)',
      )
    // Answer only once the events are committed: MinIO retries a non-2xx delivery, so a crash loses nothing.
    let result: Awaited<ReturnType<typeof events.ingest>>
    try {
      result = await events.ingest(normalized)
    } catch (error) {
      if (error instanceof SovraError) throw error
      options.log.error({ events: normalized.length, error: String(error) }, 'MinIO webhook: queueing failed')
      throw new SovraError(
        'ERR_INTERNAL',
        `queueing ${normalized.length} object events failed (${(error as Error).message}); nothing was queued, MinIO retries the delivery`,
        { cause: error },
      )
    }
    return c.json({
      received: (body as { Records: unknown[] }).Records.length,
      ...result,
      ignored: ignored.length,
      rejected,
    })
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
