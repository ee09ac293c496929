import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../../runtime/core/ports.ts'
import { loadConfig } from '../../../runtime/config/load.ts'
import { LocalHost } from '../../../runtime/hosts/local/host.ts'
import { lateSink } from '../../../runtime/hosts/local/object-events.ts'
import { SILENT_LOGGER } from '../../../runtime/hosts/local/observer.ts'
import { createBucketProvider } from '../../../infra/deploy/project-state.ts'
import { createPromMetrics } from '../../../infra/observe/metrics.ts'
import { openPglite } from '../../../infra/db/pglite.ts'
import { openPg } from '../../../infra/db/pg.ts'
import { migrate } from '../../../infra/db/migrate.ts'
import { dbEventQueue } from '../../../infra/db/event-queue.ts'
import { decodeEventKey, normalizeRecords } from '../../../triggers/object/normalize.ts'
import { HEAVY_HOOK_MS, tempProject, waitFor, withFixtures } from '../../helpers.ts'
import { createTestSchema } from '../../support/pg.ts'

const TOKEN = 'test-webhook-token-0123456789'
const CONFIG = `
[[functions]]
name = "objlog"
main = "fixtures/objlog.ts"
object_triggers = [{ bucket = "documents", events = ["created", "removed"], prefix = "policies/", suffix = ".md", max_retries = 2 }]

[[functions.r2_buckets]]
binding = "LOG"
bucket_name = "objlog"
`

let seq = 0
/** A MinIO-style record; the key arrives query-escaped, as MinIO sends it. */
function record(
  key: string,
  options: { type?: 'created' | 'removed'; meta?: Record<string, string>; etag?: string; sequencer?: string } = {},
) {
  const type = options.type ?? 'created'
  return {
    eventVersion: '2.0',
    eventSource: 'minio:s3',
    eventName: type === 'created' ? 's3:ObjectCreated:Put' : 's3:ObjectRemoved:Delete',
    eventTime: new Date().toISOString(),
    s3: {
      bucket: { name: 'documents' },
      object: {
        key: encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/'),
        ...(type === 'created'
          ? { size: 10, eTag: options.etag ?? `"etag-${key}"`, contentType: 'text/markdown' }
          : {}),
        userMetadata: Object.fromEntries(Object.entries(options.meta ?? {}).map(([k, v]) => [`X-Amz-Meta-${k}`, v])),
        sequencer: options.sequencer ?? (++seq).toString(16).toUpperCase().padStart(16, '0'),
      },
    },
  }
}

describe('normalizeRecords', () => {
  it('decodes query-escaped keys and strips MinIO metadata prefixes', () => {
    expect(decodeEventKey('policies/2026+rules%2Bextra.md')).toBe('policies/2026 rules+extra.md')
    const [e] = normalizeRecords([record('policies/a b.md', { meta: { owner: 'legal' } })], 'minio')
    expect(e).toMatchObject({
      type: 'created',
      bucket: 'documents',
      key: 'policies/a b.md',
      metadata: { owner: 'legal' },
      eventName: 's3:ObjectCreated:Put',
      source: 'minio',
    })
  })

  it('refuses malformed records naming the field', () => {
    expect(() => normalizeRecords([], 'minio')).toThrowError(/non-empty "Records" array/)
    expect(() =>
      normalizeRecords([{ eventName: 's3:ObjectCreated:Put', s3: { bucket: {}, object: { key: 'k' } } }], 'minio'),
    ).toThrowError(/Records\[0\]\.s3\.bucket\.name: expected a string, received undefined/)
    // Other event types are skipped, not refused (test/triggers/object/webhook.test.ts).
    expect(
      normalizeRecords(
        [{ eventName: 's3:BucketCreated', s3: { bucket: { name: 'b' }, object: { key: 'k' } } }],
        'minio',
      ),
    ).toEqual([])
  })
})

function eventSuite(name: string, openDb: () => Promise<{ db: Db; cleanup: () => Promise<void> }>) {
  describe(`object events through the host (${name})`, () => {
    let host: LocalHost
    let db: Db
    let cleanup: () => Promise<void>
    let log: ReturnType<ReturnType<typeof createBucketProvider>>
    const post = (records: unknown[], token: string | null = TOKEN, body?: string) =>
      fetch(`${host.url}/_sovra/events/minio`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        },
        body: body ?? JSON.stringify({ EventName: 's3:ObjectCreated:Put', Key: 'documents/x', Records: records }),
      })
    const seen = async (key: string) => (await (await log.get(`seen/${key}`))?.text()) ?? ''
    /** Events of one object that are still to run or running (none: all of them were handled). */
    const unsettled = async (objectKey: string) =>
      Number(
        (
          await db.query<{ n: string }>(
            "SELECT count(*) AS n FROM sovra_events WHERE object_key = $1 AND status IN ('staged', 'pending', 'running')",
            [objectKey],
          )
        ).rows[0]?.n,
      )
    const count = async (status: string) =>
      (await db.query<{ n: string }>('SELECT count(*) AS n FROM sovra_events WHERE status = $1', [status])).rows[0]?.n

    beforeAll(async () => {
      ;({ db, cleanup } = await openDb())
      await migrate(db)
      const dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
      const { project } = loadConfig({ cwd: dir, processEnv: { SOVRA_SECRET_MINIO_WEBHOOK_TOKEN: TOKEN } })
      const buckets = createBucketProvider(project, { env: {} })
      log = buckets('objlog')
      host = await LocalHost.start({
        project,
        log: SILENT_LOGGER,
        metrics: createPromMetrics(),
        port: 0,
        services: { buckets },
        events: { queue: dbEventQueue(db), backoffMs: 20, pollMs: 20 },
      })
    }, HEAVY_HOOK_MS)
    afterAll(async () => {
      // A failed beforeAll leaves these unset; its error is the one to report.
      await host?.close(2000)
      await db?.close()
      await cleanup?.()
    })

    it("answers MinIO's HEAD probe, and refuses a missing or wrong token and a malformed body without queueing", async () => {
      expect((await fetch(`${host.url}/_sovra/events/minio`, { method: 'HEAD' })).status).toBe(200)
      const before = await count('pending')
      const missing = await post([record('policies/x.md')], null)
      expect(missing.status).toBe(401)
      expect((await missing.json()).error.message).toMatch(/missing Authorization: Bearer/)
      expect((await post([record('policies/x.md')], 'wrong')).status).toBe(401)
      const malformed = await post([], TOKEN, '{"Records": "nope"}')
      expect(malformed.status).toBe(400)
      expect((await post([], TOKEN, 'not json')).status).toBe(400)
      expect(await count('pending')).toBe(before)
      expect(
        (await db.query('SELECT 1 FROM sovra_events WHERE object_key = $1', ['documents/policies/x.md'])).rows,
      ).toHaveLength(0)
    })

    it('runs the object handler for matching events only, and the same event delivered twice runs once', async () => {
      const r = record('policies/規程 one.md')
      const first = await post([r, record('other/skip.md'), record('policies/skip.txt')])
      expect(first.status).toBe(200)
      expect(await first.json()).toMatchObject({ received: 3, matched: 1, inserted: 1, duplicates: 0 })
      const again = await post([r])
      expect(await again.json()).toMatchObject({ matched: 1, inserted: 0, duplicates: 1 })
      await waitFor(async () => (await seen('policies/規程 one.md')) !== '')
      // A later event of the same object: the events of one object run in order, so once it has run, a second run
      // of the first one (had the duplicate been queued, or the event run again) would have come before it.
      expect(await (await post([record('policies/規程 one.md', { type: 'removed' })])).json()).toMatchObject({
        inserted: 1,
      })
      await waitFor(
        async () =>
          (await seen('policies/規程 one.md')).includes('removed:') &&
          (await unsettled('documents/policies/規程 one.md')) === 0,
        10_000,
      )
      expect((await seen('policies/規程 one.md')).split(',').map((e) => e.split(':')[0])).toEqual([
        'created',
        'removed',
      ])
      expect(await log.head('seen/other/skip.md')).toBeNull()
      const metrics = await (await fetch(`${host.url}/_sovra/metrics`)).text()
      expect(metrics).toMatch(/sovra_object_events\{status="done"\} [1-9]/)
      expect(metrics).toMatch(
        /sovra_invocations_total\{function="objlog",version="[0-9a-f]{12}",trigger="object",status="200",outcome="ok"\} [1-9]/,
      )
    })

    it('retries a handler that fails twice: 3 attempts, 1 success, 0 dead', async () => {
      await post([record('policies/flaky.md', { meta: { mode: 'fail-2' } })])
      const rows = await waitFor(async () => {
        const r = await db.query<{ status: string; attempts: number }>(
          "SELECT status, attempts FROM sovra_events WHERE object_key = 'documents/policies/flaky.md'",
        )
        return r.rows[0]?.status === 'done' ? r.rows : undefined
      }, 20_000)
      expect(rows).toEqual([{ status: 'done', attempts: 3 }])
      expect(await (await log.get('attempts/policies/flaky.md'))?.text()).toBe('3')
      expect(await seen('policies/flaky.md')).not.toBe('')
    })

    it('dead-letters a handler that always fails after max_retries, and replays it once fixed', async () => {
      await post([record('policies/broken.md', { meta: { mode: 'until-fixed' } })])
      const dead = await waitFor(async () => {
        const list = (await (await fetch(`${host.url}/_sovra/events?status=dead`)).json()) as Array<{
          id: number
          attempts: number
          lastError: string
          event: { key: string }
        }>
        return list.find((e) => e.event.key === 'policies/broken.md')
      }, 10_000)
      expect(dead).toMatchObject({ attempts: 3, lastError: expect.stringContaining('not fixed yet') })
      const letters = await db.query<{ id: string | number; last_error: string }>(
        'SELECT id, last_error FROM sovra_dead_letters WHERE object_key = $1',
        ['documents/policies/broken.md'],
      )
      expect(letters.rows.map((r) => Number(r.id))).toEqual([dead?.id])
      await log.put('fixed', 'yes')
      const replay = await fetch(`${host.url}/_sovra/events/replay`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ids: [dead?.id] }),
      })
      expect(await replay.json()).toEqual({ replayed: 1 })
      await waitFor(async () => (await seen('policies/broken.md')) !== '', 10_000)
      expect(
        (await db.query('SELECT 1 FROM sovra_dead_letters WHERE object_key = $1', ['documents/policies/broken.md']))
          .rows,
      ).toHaveLength(0)
      const bad = await fetch(`${host.url}/_sovra/events/replay`, { method: 'POST', body: '{"ids":"all"}' })
      expect(bad.status).toBe(400)
    })

    it('delivers 1,000 events across 100 keys, all of them, in order per key', async () => {
      const records = []
      for (let i = 0; i < 10; i++) {
        for (let k = 0; k < 100; k++) records.push(record(`policies/bulk/${k}.md`, { etag: `"v${i}"` }))
      }
      // Delivered in 10 webhook calls of 100, as MinIO would, the newest first within each call to test ordering.
      for (let b = 0; b < 10; b++) {
        const res = await post(records.slice(b * 100, b * 100 + 100).reverse())
        expect(res.status).toBe(200)
      }
      await waitFor(async () => Number(await count('pending')) + Number(await count('running')) === 0, 150_000)
      for (let k = 0; k < 100; k += 9) {
        const entries = (await seen(`policies/bulk/${k}.md`)).split(',')
        expect(entries).toHaveLength(10)
        const seqs = entries.map((e) => e.split(':')[1] as string)
        expect([...seqs].sort()).toEqual(seqs)
      }
      expect(
        (
          await db.query(
            "SELECT count(*) AS n FROM sovra_events WHERE object_key LIKE 'documents/policies/bulk/%' AND status = 'done'",
          )
        ).rows[0],
      ).toEqual({ n: expect.anything() })
      expect(
        Number(
          (
            await db.query<{ n: string }>(
              "SELECT count(*) AS n FROM sovra_events WHERE object_key LIKE 'documents/policies/bulk/%' AND status = 'done'",
            )
          ).rows[0]?.n,
        ),
      ).toBe(1000)
    }, 200_000)

    it('never runs an older event of an object after a newer one', async () => {
      await post([record('policies/order.md', { sequencer: '00000000000000F0' })])
      await waitFor(async () => (await seen('policies/order.md')) !== '')
      const late = await post([record('policies/order.md', { sequencer: '0000000000000010', etag: '"older"' })])
      expect(await late.json()).toMatchObject({ inserted: 1 })
      // Handled (stored as superseded, or, were it queued, run): nothing of this object is pending or running.
      await waitFor(async () => (await unsettled('documents/policies/order.md')) === 0, 10_000)
      const { rows } = await db.query<{ status: string; last_error: string | null }>(
        "SELECT status, last_error FROM sovra_events WHERE object_key = 'documents/policies/order.md' ORDER BY id",
      )
      expect(rows).toEqual([
        { status: 'done', last_error: null },
        { status: 'done', last_error: expect.stringContaining('superseded') },
      ])
      expect(await seen('policies/order.md')).toBe('created:00000000000000F0')
    })
  })
}

eventSuite('PGlite', async () => ({ db: await openPglite(), cleanup: async () => undefined }))

eventSuite('PostgreSQL server', async () => {
  const schema = await createTestSchema('sovra_events')
  return { db: await openPg(schema.url), cleanup: schema.drop }
})

describe('fs bucket writes as object events', () => {
  it('stages the event before the write and resolves leftovers of a crash at start', async () => {
    const schema = await createTestSchema('sovra_staged')
    const db = await openPg(schema.url)
    await migrate(db)
    const dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
    const { project } = loadConfig({ cwd: dir, processEnv: {} })
    const ref: { host?: LocalHost } = {}
    const buckets = createBucketProvider(project, {
      env: {},
      sink: lateSink(() => ref.host?.events?.sink()),
    })
    const host = await LocalHost.start({
      project,
      log: SILENT_LOGGER,
      metrics: createPromMetrics(),
      port: 0,
      services: { buckets },
      events: { queue: dbEventQueue(db), pollMs: 20 },
    })
    ref.host = host
    const events = host.events!
    // A normal write: staged, written, released, delivered.
    await buckets('documents').put('policies/staged.md', 'v1')
    await waitFor(
      async () => ((await (await buckets('objlog').get('seen/policies/staged.md'))?.text()) ?? '') !== '',
      10_000,
    )
    // Crash leftovers: one event staged for a write that never happened, one for a write that did.
    const never = {
      type: 'created' as const,
      bucket: 'documents',
      key: 'policies/never.md',
      size: 1,
      etag: 'nope',
      versionId: undefined,
      sequencer: 'aa',
      contentType: undefined,
      metadata: {},
      eventName: 's3:ObjectCreated:Put',
      time: new Date().toISOString(),
      source: 'fs',
    }
    await events.sink().stage(never)
    const plain = createBucketProvider(project, { env: {} })('documents')
    const written = await plain.put('policies/written.md', 'landed')
    await events.sink().stage({ ...never, key: 'policies/written.md', etag: written.etag, sequencer: 'bb' })
    expect(await events.recoverStaged(buckets)).toEqual({ released: 1, discarded: 1 })
    await waitFor(
      async () => ((await (await buckets('objlog').get('seen/policies/written.md'))?.text()) ?? '') !== '',
      10_000,
    )
    const { rows } = await db.query<{ status: string; last_error: string }>(
      "SELECT status, last_error FROM sovra_events WHERE object_key = 'documents/policies/never.md'",
    )
    expect(rows).toEqual([{ status: 'done', last_error: expect.stringContaining('interrupted') }])
    expect(await buckets('objlog').head('seen/policies/never.md')).toBeNull()
    await host.close(1000)
    await db.close()
    await schema.drop()
  })

  it('a write through the bucket fires the matching object trigger', async () => {
    const schema = await createTestSchema('sovra_fs')
    const scoped = await openPg(schema.url)
    await migrate(scoped)
    const dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
    const { project } = loadConfig({ cwd: dir, processEnv: {} })
    const ref: { host?: LocalHost } = {}
    const buckets = createBucketProvider(project, {
      env: {},
      onEvent: async (e) => void (await ref.host?.events?.ingest([e])),
    })
    ref.host = await LocalHost.start({
      project,
      log: SILENT_LOGGER,
      metrics: createPromMetrics(),
      port: 0,
      services: { buckets },
      events: { queue: dbEventQueue(scoped), pollMs: 20 },
    })
    await buckets('documents').put('policies/fs-write.md', '# written locally')
    await buckets('documents').put('policies/ignored.txt', 'no trigger')
    await buckets('documents').delete('policies/fs-write.md')
    const value = await waitFor(async () => {
      const v = (await (await buckets('objlog').get('seen/policies/fs-write.md'))?.text()) ?? ''
      return v.split(',').length === 2 ? v : undefined
    }, 10_000)
    expect(value).toMatch(/^created:[0-9a-f]+,removed:[0-9a-f]+$/)
    expect(await buckets('objlog').head('seen/policies/ignored.txt')).toBeNull()
    await ref.host.close(1000)
    await scoped.close()
    await schema.drop()
  })
})
