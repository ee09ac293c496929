import { existsSync } from 'node:fs'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { objectEvent, startTestHost, type TestHost } from 'sovra/testing'
import { HEAVY_HOOK_MS } from '../../helpers.ts'

// The kit used as a function author would: the fixture project (an object-triggered indexer and a nightly cron in
// Asia/Tokyo) on the real embedded host, its crons on the test clock, its event queue running.
const CONFIG = new URL('../../fixtures/testing-kit/wrangler-compat.toml', import.meta.url)
const T0 = Date.parse('2026-11-27T00:00:00Z') // 09:00 in Tokyo
const NIGHTLY = Date.parse('2026-11-27T17:00:00Z') // the next 02:00 in Tokyo
const HOUR = 60 * 60_000

const text = async (host: TestHost, bucket: string, key: string) =>
  (await (await host.bucket(bucket).get(key))?.text()) ?? null

describe('startTestHost: object triggers, crons and the test clock', () => {
  let host: TestHost
  beforeAll(async () => {
    host = await startTestHost({ config: CONFIG, processEnv: {}, now: T0 })
  }, HEAVY_HOOK_MS)
  afterAll(async () => host?.close())
  // Each test starts from an idle host: what an earlier (failed) test left running does not spill into its outcomes.
  beforeEach(async () => void (await host.settled()))

  it('runs the object handler exactly once for a put; its write is visible after settled()', async () => {
    await host.putObject('docs', 'a.md', 'hello')
    const outcomes = await host.settled()
    expect(outcomes).toEqual([
      {
        trigger: 'object',
        function: 'indexer',
        event: expect.objectContaining({ type: 'created', bucket: 'docs', key: 'a.md', size: 5, source: 'fs' }),
        attempt: 1,
        ok: true,
        error: undefined,
        next: 'done',
      },
    ])
    expect(await text(host, 'index', 'entries/a.md')).toBe('HELLO')
    expect(await host.settled()).toEqual([])
    expect(await text(host, 'index', 'calls/a.md')).toBe('created;')
  })

  it('fires removed on delete', async () => {
    await host.deleteObject('docs', 'a.md')
    expect(await host.settled()).toMatchObject([
      { function: 'indexer', ok: true, event: { type: 'removed', key: 'a.md' } },
    ])
    expect(await text(host, 'index', 'entries/a.md')).toBeNull()
    expect(await text(host, 'index', 'calls/a.md')).toBe('created;removed;')
  })

  it('delivers MinIO-style events once, deduplicated like the webhook', async () => {
    const event = objectEvent({ bucket: 'docs', key: 'from-minio.md', action: 'put', body: 'remote' })
    expect(await host.sendObjectEvents(event)).toEqual({ matched: 1, inserted: 1, duplicates: 0 })
    expect(await host.sendObjectEvents([event])).toEqual({ matched: 1, inserted: 0, duplicates: 1 })
    expect(await host.settled()).toMatchObject([
      { function: 'indexer', ok: true, event: { key: 'from-minio.md', source: 'minio', etag: event.etag } },
    ])
    expect(await text(host, 'index', 'calls/from-minio.md')).toBe('created;')
  })

  it('reports a throwing object handler: retried up to max_retries, then dead-lettered, without hanging', async () => {
    await host.putObject('docs', 'broken/x.md', 'x')
    const outcomes = await host.settled()
    expect(outcomes).toEqual([
      expect.objectContaining({
        attempt: 1,
        ok: false,
        next: 'retry',
        error: expect.stringMatching(/cannot index broken\/x\.md/),
      }),
      expect.objectContaining({
        attempt: 2,
        ok: false,
        next: 'dead',
        error: expect.stringMatching(/cannot index broken\/x\.md/),
      }),
    ])
    expect(await text(host, 'index', 'calls/broken/x.md')).toBe('created;created;')
  })

  it('runs nothing before a cron is due, then scheduled with the due time when the clock passes it', async () => {
    expect(await host.advance(16 * HOUR)).toEqual([])
    expect(host.clock.now()).toBe(T0 + 16 * HOUR)
    expect(await host.advance(HOUR)).toEqual([
      {
        trigger: 'cron',
        function: 'nightly',
        cron: '0 2 * * *',
        scheduledTime: NIGHTLY,
        attempt: 1,
        ok: true,
        error: undefined,
        noRetry: false,
      },
    ])
    // One indexed entry so far (from-minio.md): the handler saw the state the object triggers left.
    expect(await text(host, 'index', `runs/${NIGHTLY}`)).toBe('0 2 * * * 1')
  })

  it('runs every due run in order when the clock moves days at once', async () => {
    const outcomes = await host.advanceTo(NIGHTLY + 3 * 24 * HOUR)
    expect(outcomes.map((o) => o.trigger === 'cron' && o.scheduledTime)).toEqual(
      [1, 2, 3].map((d) => NIGHTLY + d * 24 * HOUR),
    )
    expect(host.cronRuns.map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'ok'])
  })

  it('reports a failing cron per attempt, its retries run on the test clock, then the run is dead', async () => {
    await host.putObject('index', 'config/fail-nightly', 'fail')
    // A minute past the due time: the retries (1 s, 2 s, 4 s apart, plus jitter) fall within the move.
    const outcomes = await host.advance(24 * HOUR + 60_000)
    const due = NIGHTLY + 4 * 24 * HOUR
    expect(outcomes).toEqual(
      [1, 2, 3, 4].map((attempt) =>
        expect.objectContaining({
          function: 'nightly',
          scheduledTime: due,
          attempt,
          ok: false,
          error: expect.stringMatching(/on purpose/),
        }),
      ),
    )
    expect(host.cronRuns.at(-1)).toMatchObject({ scheduledTime: due, status: 'dead', attempts: 4 })

    await host.putObject('index', 'config/fail-nightly', 'no-retry')
    expect(await host.advance(24 * HOUR)).toEqual([expect.objectContaining({ attempt: 1, ok: false, noRetry: true })])
    expect(host.cronRuns.at(-1)).toMatchObject({ status: 'failed', attempts: 1 })
    await host.deleteObject('index', 'config/fail-nightly')
  })

  it('runs a cron now with triggerCron, at the clock time, and refuses an unknown one', async () => {
    expect(await host.triggerCron('nightly')).toMatchObject([
      { function: 'nightly', scheduledTime: host.clock.now(), ok: true },
    ])
    await expect(host.triggerCron('indexer')).rejects.toThrowError(
      /no cron "\*" for function "indexer"; crons: nightly "0 2 \* \* \*"/,
    )
  })

  it('fails settled() with what is still going when it runs past its timeout, instead of hanging', async () => {
    // The fixture's handler sleeps 500 ms for slow/ keys: still running when the deadline passes.
    await host.putObject('docs', 'slow/x.md', 'x')
    await expect(host.settled({ timeoutMs: 50 })).rejects.toThrowError(
      /did not settle within 50 ms: .*object event\(s\) (pending|running) \(indexer <- docs\/slow\/x\.md attempt \d\)/,
    )
    expect(await host.settled()).toMatchObject([{ event: { key: 'slow/x.md' }, ok: true }])
  })

  it('keeps state in a temporary folder, removed on close', () => {
    expect(host.state).toMatch(/sovra-test-host-/)
    expect(existsSync(host.state)).toBe(true)
    expect(existsSync(new URL('.sovra', CONFIG))).toBe(false)
  })
})

describe('startTestHost: isolation', () => {
  it(
    'starts each host on fresh state and removes it on close',
    async () => {
      const host = await startTestHost({ config: CONFIG, processEnv: {}, now: T0 })
      try {
        expect((await host.bucket('index').list()).objects).toEqual([])
        expect(await host.advance(HOUR)).toEqual([])
      } finally {
        await host.close()
      }
      expect(existsSync(host.state)).toBe(false)
    },
    HEAVY_HOOK_MS,
  )
})
