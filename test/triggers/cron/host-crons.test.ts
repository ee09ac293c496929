import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../../runtime/config/load.ts'
import { LocalHost } from '../../../runtime/hosts/local/host.ts'
import { SILENT_LOGGER } from '../../../runtime/hosts/local/observer.ts'
import { createBucketProvider } from '../../../infra/deploy/project-state.ts'
import { createPromMetrics } from '../../../infra/observe/metrics.ts'
import { ManualClock } from '../../../triggers/cron/clock.ts'
import { MemoryCronStore } from '../../../triggers/cron/scheduler.ts'
import { runCli, tempProject, waitFor, withFixtures } from '../../helpers.ts'

const CONFIG = `
[[functions]]
name = "cronlog"
main = "fixtures/cronlog.ts"
crons = ["*/5 * * * *"]
timezone = "Asia/Tokyo"

[[functions.r2_buckets]]
binding = "LOG"
bucket_name = "cronlog"
`
const T0 = Date.parse('2026-11-27T00:00:00Z')

const run = runCli

describe('crons on the embedded host', () => {
  let host: LocalHost
  let dir: string
  const clock = new ManualClock(T0)
  const store = new MemoryCronStore()
  let buckets: ReturnType<typeof createBucketProvider>

  beforeAll(async () => {
    dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
    const { project } = loadConfig({ cwd: dir, processEnv: {} })
    buckets = createBucketProvider(project, { env: {} })
    host = await LocalHost.start({
      project,
      log: SILENT_LOGGER,
      metrics: createPromMetrics(),
      port: 0,
      services: { buckets },
      crons: { store, clock },
    })
  })
  afterAll(() => host.close(1000))

  it('runs the scheduled handler in its isolate when the cron is due, with cron and scheduledTime', async () => {
    await clock.advance(5 * 60_000)
    const listed = await waitFor(async () => {
      const l = await buckets('cronlog').list({ prefix: 'runs/' })
      return l.objects.length > 0 ? l : undefined
    })
    expect(listed?.objects.map((o) => o.key)).toEqual([`runs/${T0 + 5 * 60_000}`])
    expect(await (await buckets('cronlog').get(`runs/${T0 + 5 * 60_000}`))?.text()).toBe('*/5 * * * *')
    await waitFor(() => store.runs.length === 1)
    expect(store.runs[0]).toMatchObject({ function: 'cronlog', status: 'ok', attempts: 1 })
  })

  it('lists triggers with the next run times and fires a cron through the admin API', async () => {
    const list = await (await fetch(`${host.url}/_sovra/triggers`)).json()
    expect(list).toEqual([
      {
        function: 'cronlog',
        routes: [],
        crons: [
          {
            cron: '*/5 * * * *',
            timezone: 'Asia/Tokyo',
            next: expect.arrayContaining([new Date(T0 + 10 * 60_000).toISOString()]),
          },
        ],
      },
    ])
    const fired = await fetch(`${host.url}/_sovra/triggers/cron/cronlog`, { method: 'POST' })
    expect(fired.status).toBe(200)
    expect(await fired.json()).toMatchObject({ function: 'cronlog', status: 'ok' })
    const none = await fetch(`${host.url}/_sovra/triggers/cron/nope`, { method: 'POST' })
    expect(none.status).toBe(404)
  })

  it('sovra trigger cron goes through the running host; sovra triggers prints the next 5 runs', async () => {
    const before = store.runs.length
    const res = await run([
      'trigger',
      'cron',
      'cronlog',
      '--url',
      host.url,
      '--config',
      join(dir, 'wrangler-compat.toml'),
    ])
    expect(res.code).toBe(0)
    expect(res.out).toMatch(/cron cronlog via http:\/\/127\.0\.0\.1:\d+: ok after 1 attempt/)
    expect(store.runs.length).toBe(before + 1)
    const listed = await run(['triggers', '--config', join(dir, 'wrangler-compat.toml')])
    expect(listed.out).toMatch(/cron {4}\*\/5 \* \* \* \* {2}\(Asia\/Tokyo\) {2}next: (\S+, ){4}\S+\n/)
    // The next runs read in the cron's own zone (issue 11: they were printed in UTC only).
    expect(listed.out).toMatch(/next: \d{4}-\d\d-\d\dT\d\d:\d\d:00\+09:00, /)
  })

  it('sovra trigger cron runs the handler here when no host answers', async () => {
    const res = await run(['trigger', 'cron', 'cronlog', '--config', join(dir, 'wrangler-compat.toml')])
    // The host above serves this project but is not on this state's host.json nor the default port: not found.
    expect(res.err).toMatch(/no host answers at http:\/\/127\.0\.0\.1:8787; running the scheduled handler once here/)
    expect(res.out).toMatch(/cron cronlog: ok/)
    expect(res.code).toBe(0)
    const bad = await run([
      'trigger',
      'cron',
      'cronlog',
      '--cron',
      '0 0 * * *',
      '--config',
      join(dir, 'wrangler-compat.toml'),
    ])
    expect(bad.code).toBe(2)
    expect(bad.err).toMatch(/has crons "\*\/5 \* \* \* \*", not "0 0 \* \* \*"/)
  })

  it('refuses an invalid cron in config, naming the function and the expression', () => {
    const bad = tempProject({
      'wrangler-compat.toml': '[[functions]]\nname = "x"\nmain = "x.js"\ncrons = ["0 25 * * *"]\n',
      'x.js': 'export default { scheduled() {} }',
    })
    expect(() => loadConfig({ cwd: bad, processEnv: {} })).toThrowError(
      /functions\[0\]\.crons: function "x": invalid schedule "0 25 \* \* \*"/,
    )
  })
})
