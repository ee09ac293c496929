import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ObjectEvent } from '../../../runtime/core/handlers.ts'
import type { Db } from '../../../runtime/core/ports.ts'
import { loadConfig } from '../../../runtime/config/load.ts'
import { LocalHost } from '../../../runtime/hosts/local/host.ts'
import { SILENT_LOGGER } from '../../../runtime/hosts/local/observer.ts'
import { createBucketProvider } from '../../../infra/deploy/project-state.ts'
import { createPromMetrics } from '../../../infra/observe/metrics.ts'
import { openPglite } from '../../../infra/db/pglite.ts'
import { migrate } from '../../../infra/db/migrate.ts'
import { dbEventQueue } from '../../../infra/db/event-queue.ts'
import { maxRetriesFor } from '../../../triggers/object/match.ts'
import { HEAVY_HOOK_MS, tempProject, waitFor, withFixtures } from '../../helpers.ts'

// One function, three object triggers with different max_retries; "patient/deep/" matches two of them.
const CONFIG = `
[[functions]]
name = "objlog"
main = "fixtures/objlog.ts"
object_triggers = [
  { bucket = "documents", prefix = "quick/", max_retries = 0 },
  { bucket = "documents", prefix = "patient/", max_retries = 3 },
  { bucket = "documents", prefix = "patient/deep/", max_retries = 1 },
]

[[functions.r2_buckets]]
binding = "LOG"
bucket_name = "objlog"
`

let seq = 0
/** An event the objlog fixture always fails on (LOG has no "fixed" object). */
function failing(key: string): ObjectEvent {
  return {
    type: 'created',
    bucket: 'documents',
    key,
    size: 1,
    etag: `e-${key}`,
    versionId: undefined,
    sequencer: (++seq).toString(16),
    contentType: undefined,
    metadata: { mode: 'until-fixed' },
    eventName: 's3:ObjectCreated:Put',
    time: new Date().toISOString(),
    source: 'fs',
  }
}

describe('maxRetriesFor', () => {
  const triggers = [
    { bucket: 'documents', prefix: 'a/', max_retries: 0 },
    { bucket: 'documents', prefix: 'a/b/', max_retries: 4 },
    { bucket: 'documents', prefix: 'c/' },
  ]

  it("takes the matching trigger's max_retries, the largest when several match, the default when it sets none", () => {
    expect(maxRetriesFor(triggers, failing('a/x'))).toBe(0)
    expect(maxRetriesFor(triggers, failing('a/b/x'))).toBe(4)
    expect(maxRetriesFor(triggers, failing('c/x'))).toBe(5)
    expect(maxRetriesFor(triggers, failing('elsewhere/x'))).toBe(5)
  })
})

describe('object events with several triggers on one function', () => {
  let host: LocalHost
  let db: Db

  beforeAll(async () => {
    db = await openPglite()
    await migrate(db)
    const dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
    const { project } = loadConfig({ cwd: dir, processEnv: {} })
    host = await LocalHost.start({
      project,
      log: SILENT_LOGGER,
      metrics: createPromMetrics(),
      port: 0,
      services: { buckets: createBucketProvider(project, { env: {} }) },
      events: { queue: dbEventQueue(db), backoffMs: 5, pollMs: 10 },
    })
  }, HEAVY_HOOK_MS)
  afterAll(async () => {
    await host?.close(2000)
    await db?.close()
  })

  it('retries each event as many times as the trigger that matched it says', async () => {
    const events = host.events!
    await events.ingest([failing('quick/a.md'), failing('patient/a.md'), failing('patient/deep/a.md')])
    const dead = await waitFor(async () => {
      const list = await events.queue.list({ status: 'dead' })
      return list.length === 3 ? list : undefined
    }, 20_000)
    const attempts = Object.fromEntries((dead ?? []).map((e) => [e.event.key, e.attempts]))
    // attempts = max_retries + 1; "patient/deep/" matches max_retries 3 and 1, and the larger wins.
    expect(attempts).toEqual({ 'quick/a.md': 1, 'patient/a.md': 4, 'patient/deep/a.md': 4 })
  })
})
