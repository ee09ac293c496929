import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'

import { loadConfig } from '../../../runtime/config/load.ts'
import { businessCalendar } from '../../../infra/pools/calendar.ts'
import { localSpawner, PoolManager } from '../../../infra/pools/manager.ts'
import type { LocalReplica } from '../../../infra/pools/replica-process.ts'
import { AiRouter } from '../../../infra/pools/router.ts'
import { captureLogger, tempProject, waitFor } from '../../helpers.ts'

// Replicas here are real `sovra pool serve` child processes on the tiny GGUF model; the clock is the test's.
const dir = tempProject({
  'wrangler-compat.toml': `
name = "pools-test"
[[pools]]
name = "qa"
engine = "llama"
model = "tiny:llama"
tier = "internal"
slots = 1
threads = 1
min_replicas = 1
max_replicas = 2
target_inflight = 1
queue_max = 8
scale_up_delay_s = 0
scale_down_delay_s = 60
probe = false

[[pools]]
name = "duo"
engine = "llama"
model = "tiny:llama"
tier = "internal"
slots = 1
threads = 1
min_replicas = 2
max_replicas = 2
probe = false

[[pools]]
name = "surge"
engine = "llama"
model = "tiny:llama"
tier = "internal"
slots = 1
threads = 1
min_replicas = 1
max_replicas = 2
scale_down_delay_s = 60
probe = false
surge = [{ calendar = "month-end", business_days = 2, start = "08:00", end = "20:00", timezone = "Asia/Tokyo", min_replicas = 2, warmup_minutes = 30 }]
`,
})
const { project } = loadConfig({ configPath: join(dir, 'wrangler-compat.toml'), env: undefined })
const managers: PoolManager[] = []
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close(1000)))
})

function manager(pool: string, clock: { now: number }): { m: PoolManager; log: ReturnType<typeof captureLogger> } {
  const log = captureLogger()
  const m = new PoolManager({
    pools: project.pools.filter((p) => p.name === pool),
    // 2026-11-30 (Monday) is a holiday here, so November's last two business days are the 26th and 27th.
    calendar: businessCalendar({ holidays: ['2026-11-30', '2026-12-31'] }),
    spawn: localSpawner({ configFile: project.file, env: undefined, stateDir: join(dir, 'state') }),
    log,
    now: () => clock.now,
  })
  managers.push(m)
  return { m, log }
}
const caller = { function: 'test', tier: 'internal', timeoutMs: 60_000 }
// A generation the grammar keeps going for a while (it cannot stop before 200 items).
const longChat = {
  model: 'qa',
  messages: [{ role: 'user' as const, content: 'list' }],
  max_tokens: 1800,
  temperature: 1,
  seed: 3,
  schema: { type: 'array', items: { enum: ['yes', 'no'] }, minItems: 200, maxItems: 200 },
}

describe('PoolManager (local child-process replicas)', () => {
  it('scales up under load, sends traffic only to ready replicas, and scales down when idle after the delay', async () => {
    const clock = { now: Date.UTC(2026, 6, 1, 3) }
    const { m, log } = manager('qa', clock)
    await m.start()
    expect(m.pools()[0]?.replicas.map((r) => r.state)).toEqual(['ready'])
    const router = new AiRouter(m, project.tiers)
    const calls = [
      router.call('chat', longChat, caller),
      router.call('chat', longChat, caller),
      router.call('chat', longChat, caller),
    ]
    await waitFor(() => (m.pools()[0]?.replicas[0]?.outstanding ?? 0) >= 3)
    await m.tick()
    const replicas = m.pools()[0]?.replicas ?? []
    expect(replicas.map((r) => r.state)).toEqual(['ready', 'starting'])
    expect(log.lines.find((l) => l.msg === 'pool scale decision' && l['to'] === 2)?.['reason']).toBe('load')
    const results = await Promise.all(calls)
    // All three were sent while the second replica was starting: none may have reached it.
    expect(results.every((r) => r['replica'] === 'qa-1')).toBe(true)
    await waitFor(() => replicas[1]?.state === 'ready', 30_000)
    const next = await router.call(
      'chat',
      { model: 'qa', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 },
      caller,
    )
    expect(['qa-1', 'qa-2']).toContain(next['replica'])
    // Idle: nothing happens before scale_down_delay_s, then one replica drains and stops.
    await m.tick()
    clock.now += 59_000
    await m.tick()
    expect(m.pools()[0]?.replicas.filter((r) => r.state === 'ready')).toHaveLength(2)
    clock.now += 1_000
    await m.tick()
    await waitFor(() => m.pools()[0]?.replicas.filter((r) => r.state === 'stopped').length === 1, 15_000)
    await m.tick()
    expect(m.pools()[0]?.replicas.map((r) => r.state)).toEqual(['ready'])
  }, 120_000)

  it('retries a request on another replica when its replica dies mid-request, with one result', async () => {
    const clock = { now: Date.UTC(2026, 6, 1, 3) }
    const { m } = manager('duo', clock)
    await m.start()
    const router = new AiRouter(m, project.tiers)
    const duo = { ...longChat, model: 'duo' }
    const [a, b] = m.pools()[0]?.replicas ?? []
    const calls = [router.call('chat', duo, caller), router.call('chat', { ...duo, seed: 4 }, caller)]
    // Least outstanding: one request on each replica.
    await waitFor(() => a?.outstanding === 1 && b?.outstanding === 1)
    // duo-1 is killed while generating: the router saw no answer, so it sends that request to duo-2.
    process.kill((a as LocalReplica).pid as number, 'SIGKILL')
    const results = await Promise.all(calls)
    expect(results.map((r) => r['replica'])).toEqual(['duo-2', 'duo-2'])
    expect(results.map((r) => (r['timings'] as { attempts: number }).attempts).sort()).toEqual([1, 2])
    for (const r of results) expect((r['json'] as string[]).length).toBe(200)
    // The dead replica is replaced on the next ticks.
    await waitFor(() => a?.state === 'failed', 5000)
    await m.tick()
    expect(m.pools()[0]?.replicas.map((r) => r.id)).toEqual(['duo-2'])
    clock.now += 5_000 // past the restart backoff
    await m.tick()
    expect(m.pools()[0]?.replicas.map((r) => r.id)).toEqual(['duo-2', 'duo-3'])
  }, 120_000)

  it('starts surge replicas warmup_minutes ahead on the business calendar and checks p95 before the window opens', async () => {
    // Friday 2026-11-27 07:00 in Tokyo (22:00 UTC on the 26th): the window of the 27th opens at 08:00 Tokyo.
    const clock = { now: Date.UTC(2026, 10, 26, 22, 0) }
    const { m, log } = manager('surge', clock)
    await m.start()
    expect(m.pools()[0]?.replicas).toHaveLength(1)
    const before = m.summary()[0]
    expect(before?.surge.active).toBeNull()
    expect(before?.surge.next.map((w) => w.day)).toEqual(['2026-11-27', '2026-12-29', '2026-12-30'])
    clock.now = Date.UTC(2026, 10, 26, 22, 31) // 07:31 Tokyo: warm-up
    await m.tick()
    expect(m.pools()[0]?.replicas).toHaveLength(2)
    expect(m.summary()[0]?.surge.active).toMatchObject({ phase: 'warmup', min_replicas: 2 })
    await waitFor(() => m.pools()[0]?.replicas.every((r) => r.state === 'ready'), 30_000)
    await m.tick()
    const check = m.summary()[0]?.surge.last_check
    expect(check).toMatchObject({ window_day: '2026-11-27', replicas: 2, failures: 0, ok: true })
    expect(log.lines.find((l) => l.msg === 'surge readiness check passed')).toBeDefined()
    // Monday 30th is a holiday: after Friday's window closes nothing holds the floor, and the pool drains to 1.
    clock.now = Date.UTC(2026, 10, 30, 2, 0)
    await m.tick()
    expect(m.summary()[0]?.surge.active).toBeNull()
    clock.now += 61_000
    await m.tick()
    await waitFor(() => m.pools()[0]?.replicas.some((r) => r.state === 'stopped'), 15_000)
  }, 120_000)
})
