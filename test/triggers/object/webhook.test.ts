import { request as httpRequest } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../../runtime/core/ports.ts'
import { loadConfig } from '../../../runtime/config/load.ts'
import { LocalHost } from '../../../runtime/hosts/local/host.ts'
import { resolveWebhookMaxBytes } from '../../../runtime/hosts/local/admin/events.ts'
import { createBucketProvider } from '../../../infra/deploy/project-state.ts'
import { createPromMetrics } from '../../../infra/observe/metrics.ts'
import { openPglite } from '../../../infra/db/pglite.ts'
import { migrate } from '../../../infra/db/migrate.ts'
import { dbEventQueue } from '../../../infra/db/event-queue.ts'
import type { EventQueue } from '../../../triggers/object/queue.ts'
import { normalizeBatch, normalizeRecords } from '../../../triggers/object/normalize.ts'
import { captureLogger, HEAVY_HOOK_MS, tempProject, withFixtures } from '../../helpers.ts'

const TOKEN = 'test-webhook-token-0123456789'
const LIMIT = 64 * 1024
const CONFIG = `
[[functions]]
name = "objlog"
main = "fixtures/objlog.ts"
object_triggers = [{ bucket = "documents", events = ["created", "removed"] }]

[[functions.r2_buckets]]
binding = "LOG"
bucket_name = "objlog"
`

let seq = 0
/** A MinIO record as MinIO sends it: the key query-escaped (so a NUL byte arrives as %00). */
function record(escapedKey: string, eventName = 's3:ObjectCreated:Put') {
  return {
    eventVersion: '2.0',
    eventSource: 'minio:s3',
    eventName,
    eventTime: new Date().toISOString(),
    s3: {
      bucket: { name: 'documents' },
      object: {
        key: escapedKey,
        size: 1,
        eTag: `"e-${escapedKey}"`,
        sequencer: (++seq).toString(16).padStart(16, '0'),
      },
    },
  }
}

describe('normalizeBatch', () => {
  it('refuses a record whose key or fields hold a NUL or a lone surrogate, alone, naming the field', () => {
    const batch = normalizeBatch(
      [
        record('nul%00byte'),
        record('fine.md'),
        { ...record('meta.md'), s3: { ...record('meta.md').s3, object: { key: 'meta.md', eTag: 'a\u0000b' } } },
        { ...record('x'), s3: { bucket: { name: 'documents' }, object: { key: 'lone\ud800.md' } } },
      ],
      'minio',
    )
    expect(batch.events.map((e) => e.key)).toEqual(['fine.md'])
    expect(batch.rejected).toEqual([
      {
        index: 0,
        message: 'Records[0].s3.object.key: expected a key without NUL characters (%00), received "nul%00byte"',
      },
      {
        index: 2,
        message: 'Records[2].s3.object.eTag: expected text without NUL (U+0000) characters, received "a\\u0000b"',
      },
      {
        index: 3,
        message: expect.stringMatching(/^Records\[3\]\.s3\.object\.key: expected well-formed Unicode text/),
      },
    ])
  })

  it('skips records of other event types instead of refusing the batch, and says which', () => {
    const batch = normalizeBatch([record('a.md', 's3:ObjectAccessed:Get'), record('b.md')], 'minio')
    expect(batch.events.map((e) => e.key)).toEqual(['b.md'])
    expect(batch.ignored).toEqual([{ index: 0, eventName: 's3:ObjectAccessed:Get' }])
    expect(batch.rejected).toEqual([])
    // The OpenWhisk events bridge's entry point skips them too, and still refuses malformed records.
    expect(normalizeRecords([record('a.md', 's3:ObjectAccessed:Head')], 'minio')).toEqual([])
    expect(() => normalizeRecords([record('bad%ZZ')], 'minio')).toThrowError(
      /Records\[0\]\.s3\.object\.key: expected query-escaped text/,
    )
  })
})

describe('resolveWebhookMaxBytes', () => {
  it('defaults to 1 MiB and refuses a value that is not a positive whole number, naming the variable', () => {
    expect(resolveWebhookMaxBytes(undefined)).toBe(1024 * 1024)
    expect(resolveWebhookMaxBytes('2048')).toBe(2048)
    for (const bad of ['0', '-1', '1.5', '8MiB']) {
      expect(() => resolveWebhookMaxBytes(bad)).toThrowError(
        `SOVRA_WEBHOOK_MAX_BYTES: expected a positive whole number of bytes (default 1048576), received "${bad}"`,
      )
    }
  })
})

describe('MinIO webhook intake (embedded host, PGlite)', () => {
  const log = captureLogger()
  let host: LocalHost
  let db: Db
  let failEnqueue = false
  const post = (records: unknown[], authorization = `Bearer ${TOKEN}`) =>
    fetch(`${host.url}/_sovra/events/minio`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization },
      body: JSON.stringify({ EventName: 's3:ObjectCreated:Put', Key: 'documents/x', Records: records }),
    })
  const rows = async (key: string) =>
    (await db.query('SELECT id FROM sovra_events WHERE object_key = $1', [`documents/${key}`])).rows

  beforeAll(async () => {
    db = await openPglite()
    await migrate(db)
    const queue = dbEventQueue(db)
    // The store failing (a lost connection): the answer must say so, not blame a function.
    const failing: EventQueue = {
      ...queue,
      enqueue: (deliveries, options) =>
        failEnqueue ? Promise.reject(new Error('connection terminated')) : queue.enqueue(deliveries, options),
    }
    const dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
    const { project } = loadConfig({ cwd: dir, processEnv: { SOVRA_SECRET_MINIO_WEBHOOK_TOKEN: TOKEN } })
    host = await LocalHost.start({
      project,
      log,
      metrics: createPromMetrics(),
      port: 0,
      services: { buckets: createBucketProvider(project, { env: {} }) },
      events: { queue: failing, pollMs: 20 },
      webhookMaxBytes: LIMIT,
    })
  }, HEAVY_HOOK_MS)
  afterAll(async () => {
    await host?.close(2000)
    await db?.close()
  })

  it('queues the rest of a batch with a NUL key in one record, answering 200 with the record refused', async () => {
    const res = await post([record('nul%00byte'), record('after-nul.md')])
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({
      received: 2,
      inserted: 1,
      ignored: 0,
      rejected: [{ index: 0, message: expect.stringContaining('without NUL characters (%00), received "nul%00byte"') }],
    })
    expect(await rows('after-nul.md')).toHaveLength(1)
    expect(log.lines.find((l) => l.msg.startsWith('MinIO webhook: records refused'))).toMatchObject({
      level: 'warn',
      rejected: [{ index: 0 }],
    })
  })

  it('skips an s3:ObjectAccessed:Get record and queues the created one beside it', async () => {
    const res = await post([record('read.md', 's3:ObjectAccessed:Get'), record('written.md')])
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ received: 2, inserted: 1, ignored: 1, rejected: [] })
    expect(await rows('read.md')).toHaveLength(0)
    expect(await rows('written.md')).toHaveLength(1)
    expect(log.lines.find((l) => l.msg.startsWith('MinIO webhook: records of other event types'))).toMatchObject({
      ignored: 1,
      event_names: ['s3:ObjectAccessed:Get'],
    })
  })

  it('takes the bearer scheme in lower case', async () => {
    expect((await post([record('lower.md')], `bearer ${TOKEN}`)).status).toBe(200)
  })

  it('answers 500 ERR_INTERNAL naming the store failure when queueing fails, not a function error', async () => {
    failEnqueue = true
    try {
      const res = await post([record('store-down.md')])
      expect(res.status).toBe(500)
      const { error } = (await res.json()) as { error: { code: string; message: string } }
      expect(error.code).toBe('ERR_INTERNAL')
      expect(error.message).toMatch(/^queueing 1 object events failed \(connection terminated\)/)
    } finally {
      failEnqueue = false
    }
  })

  it('refuses a Content-Length over the limit with 413 naming the limit', async () => {
    const res = await fetch(`${host.url}/_sovra/events/minio`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: 'x'.repeat(LIMIT + 1),
    })
    expect(res.status).toBe(413)
    const { error } = (await res.json()) as { error: { code: string; message: string; limit: number } }
    expect(error).toMatchObject({ code: 'ERR_BODY_TOO_LARGE', limit: LIMIT })
    expect(error.message).toContain(
      `over the limit of ${LIMIT} bytes (SOVRA_WEBHOOK_MAX_BYTES); received content-length`,
    )
  })

  it('refuses a chunked body with 413 as soon as it passes the limit, while the upload is still going', async () => {
    // The body never ends: a host that buffered before checking would never answer.
    const { status, body, connection } = await new Promise<{ status: number; body: string; connection: unknown }>(
      (resolve, reject) => {
        const req = httpRequest(
          `${host.url}/_sovra/events/minio`,
          {
            method: 'POST',
            headers: { authorization: `Bearer ${TOKEN}`, 'transfer-encoding': 'chunked' },
          },
          (res) => {
            let text = ''
            res.on('data', (c: Buffer) => (text += c.toString()))
            res.on('end', () => {
              resolve({ status: res.statusCode ?? 0, body: text, connection: res.headers['connection'] })
              req.destroy()
            })
          },
        )
        req.on('error', reject)
        req.write('x'.repeat(LIMIT / 2))
        req.write('x'.repeat(LIMIT / 2 + 1024))
      },
    )
    expect(status).toBe(413)
    expect(connection).toBe('close')
    expect(JSON.parse(body).error.message).toContain(`received more than ${LIMIT} bytes`)
  })
})
