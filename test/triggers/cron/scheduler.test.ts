import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../triggers/cron/clock.ts'
import { parseSchedule } from '../../../triggers/cron/schedule.ts'
import { CronScheduler, MemoryCronStore, type CronRunResult } from '../../../triggers/cron/scheduler.ts'

const MIN = 60_000
const T0 = Date.parse('2026-11-27T00:00:00Z')
const iso = (ms: number) => new Date(ms).toISOString()

describe('parseSchedule', () => {
  it('computes run times in the configured timezone, 5 and 6 fields', () => {
    const tokyo = parseSchedule({ function: 'report', cron: '0 2 * * *', timezone: 'Asia/Tokyo' })
    expect(tokyo.upcoming(2, T0).map(iso)).toEqual(['2026-11-27T17:00:00.000Z', '2026-11-28T17:00:00.000Z'])
    const seconds = parseSchedule({ function: 'f', cron: '*/10 * * * * *' })
    expect(iso(seconds.next(T0 + 5000) as number)).toBe('2026-11-27T00:00:10.000Z')
  })

  it('honours start_date and stop_date like the alarms feed', () => {
    const s = parseSchedule({
      function: 'f',
      cron: '0 2 * * *',
      startDate: '2026-12-01T00:00:00Z',
      stopDate: '2026-12-03T00:00:00Z',
    })
    expect(s.upcoming(5, T0).map(iso)).toEqual(['2026-12-01T02:00:00.000Z', '2026-12-02T02:00:00.000Z'])
    expect(s.next(Date.parse('2026-12-03T00:00:00Z'))).toBeUndefined()
  })

  it('refuses bad expressions, timezones and dates with what is valid', () => {
    expect(() => parseSchedule({ function: 'f', cron: '* * *' })).toThrowError(
      /has 3 fields; use 5 \(minute hour day month weekday\) or 6/,
    )
    expect(() => parseSchedule({ function: 'f', cron: '61 * * * *' })).toThrowError(
      /invalid schedule "61 \* \* \* \*": .*minute: 61/,
    )
    expect(() => parseSchedule({ function: 'f', cron: '* * * * *', timezone: 'Mars/Base' })).toThrowError(
      /in Mars\/Base: .*Invalid timezone/,
    )
    expect(() => parseSchedule({ function: 'f', cron: '* * * * *', startDate: 'soon' })).toThrowError(
      /start_date "soon" is not a date/,
    )
    expect(() =>
      parseSchedule({ function: 'f', cron: '* * * * *', startDate: '2026-12-02', stopDate: '2026-12-01' }),
    ).toThrowError(/stop_date .* is not after start_date/)
  })
})

function setup(
  run: (attempt: number, at: number) => Promise<CronRunResult>,
  options: { cron?: string; store?: MemoryCronStore; catchUp?: boolean; start?: number } = {},
) {
  const clock = new ManualClock(options.start ?? T0)
  const store = options.store ?? new MemoryCronStore()
  const calls: Array<{ at: number; attempt: number; when: number }> = []
  const scheduler = new CronScheduler({
    schedules: [parseSchedule({ function: 'job', cron: options.cron ?? '*/5 * * * *' })],
    clock,
    store,
    backoffMs: 1000,
    maxRetries: 3,
    ...(options.catchUp === undefined ? {} : { catchUp: options.catchUp }),
    run: async (_spec, at, attempt) => {
      calls.push({ at, attempt, when: clock.now() })
      return run(attempt, at)
    },
  })
  return { clock, store, calls, scheduler }
}

const OK: CronRunResult = { ok: true, noRetry: false }
const FAIL: CronRunResult = { ok: false, noRetry: false, error: 'boom' }

describe('CronScheduler', () => {
  it('fires on each due time with scheduledTime, and not before', async () => {
    const { clock, calls, store, scheduler } = setup(async () => OK)
    await scheduler.start()
    await clock.advance(4 * MIN + 59_000)
    expect(calls).toHaveLength(0)
    await clock.advance(11 * MIN)
    expect(calls.map((c) => iso(c.at))).toEqual([
      '2026-11-27T00:05:00.000Z',
      '2026-11-27T00:10:00.000Z',
      '2026-11-27T00:15:00.000Z',
    ])
    expect(store.runs.map((r) => r.status)).toEqual(['ok', 'ok', 'ok'])
    scheduler.stop()
  })

  it('retries a failing run with exponential backoff, then succeeds', async () => {
    const { clock, calls, store, scheduler } = setup(async (attempt) => (attempt < 3 ? FAIL : OK))
    await scheduler.start()
    await clock.advance(5 * MIN + 10_000)
    expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3])
    const gaps = [calls[1]!.when - calls[0]!.when, calls[2]!.when - calls[1]!.when]
    expect(gaps[0]).toBeGreaterThanOrEqual(1000)
    expect(gaps[0]).toBeLessThanOrEqual(1200)
    expect(gaps[1]).toBeGreaterThanOrEqual(2000)
    expect(gaps[1]).toBeLessThanOrEqual(2400)
    expect(store.runs).toEqual([expect.objectContaining({ status: 'ok', attempts: 3, scheduledTime: T0 + 5 * MIN })])
    scheduler.stop()
  })

  it('stops retrying when the handler calls noRetry(), and gives up after maxRetries', async () => {
    const noRetry = setup(async () => ({ ok: false, noRetry: true, error: 'bad input' }))
    await noRetry.scheduler.start()
    await noRetry.clock.advance(5 * MIN + 30_000)
    expect(noRetry.calls).toHaveLength(1)
    expect(noRetry.store.runs).toEqual([expect.objectContaining({ status: 'failed', attempts: 1, error: 'bad input' })])
    noRetry.scheduler.stop()
    const always = setup(async () => FAIL)
    await always.scheduler.start()
    await always.clock.advance(5 * MIN + 30_000)
    expect(always.calls).toHaveLength(4)
    expect(always.store.runs).toEqual([expect.objectContaining({ status: 'dead', attempts: 4, error: 'boom' })])
    always.scheduler.stop()
  })

  it('never overlaps runs of one schedule: a run due while the last one runs is recorded as skipped', async () => {
    let release: () => void = () => undefined
    const { clock, calls, store, scheduler } = setup(
      () =>
        new Promise<CronRunResult>((resolve) => {
          release = () => resolve(OK)
        }),
    )
    await scheduler.start()
    await clock.advance(5 * MIN)
    await clock.advance(5 * MIN)
    expect(calls).toHaveLength(1)
    expect(store.runs).toEqual([expect.objectContaining({ status: 'skipped', scheduledTime: T0 + 10 * MIN })])
    release()
    await clock.advance(5 * MIN)
    expect(calls).toHaveLength(2)
    release()
    await clock.advance(0)
    expect(store.runs.map((r) => r.status)).toEqual(['skipped', 'ok', 'ok'])
    scheduler.stop()
  })

  it('after downtime fires a missed run once at start, or not at all when catch-up is off', async () => {
    const store = new MemoryCronStore()
    await store.record({ function: 'job', cron: '*/5 * * * *', scheduledTime: T0, status: 'ok', attempts: 1 })
    const later = T0 + 42 * MIN
    const on = setup(async () => OK, { store, start: later })
    await on.scheduler.start()
    await on.clock.advance(0)
    expect(on.calls.map((c) => iso(c.at))).toEqual(['2026-11-27T00:40:00.000Z'])
    on.scheduler.stop()
    const store2 = new MemoryCronStore()
    await store2.record({ function: 'job', cron: '*/5 * * * *', scheduledTime: T0, status: 'ok', attempts: 1 })
    const off = setup(async () => OK, { store: store2, start: later, catchUp: false })
    await off.scheduler.start()
    await off.clock.advance(0)
    expect(off.calls).toHaveLength(0)
    await off.clock.advance(3 * MIN)
    expect(off.calls.map((c) => iso(c.at))).toEqual(['2026-11-27T00:45:00.000Z'])
    off.scheduler.stop()
  })

  it('fires on demand, and lists upcoming runs', async () => {
    const { clock, calls, scheduler } = setup(async () => OK)
    await scheduler.start()
    await scheduler.fire('job')
    expect(calls.map((c) => c.at)).toEqual([clock.now()])
    expect(scheduler.upcoming(3)[0]?.times.map(iso)).toEqual([
      '2026-11-27T00:05:00.000Z',
      '2026-11-27T00:10:00.000Z',
      '2026-11-27T00:15:00.000Z',
    ])
    await expect(scheduler.fire('other')).rejects.toThrowError(/function "other" has no cron/)
    scheduler.stop()
  })
})
