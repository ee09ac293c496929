import type { Clock } from './clock.ts'
import { SYSTEM_CLOCK } from './clock.ts'
import type { CronSpec, Schedule } from './schedule.ts'

/** How one attempt of a scheduled run went. */
export interface CronRunResult {
  ok: boolean
  /** The handler called controller.noRetry(). */
  noRetry: boolean
  error?: string | undefined
}

/** The recorded end of a scheduled run. */
export interface CronRunRecord {
  function: string
  cron: string
  scheduledTime: number
  status: 'ok' | 'failed' | 'skipped' | 'dead'
  attempts: number
  error?: string | undefined
}

/** Where runs are recorded (the SQL store in a host; memory in tests). */
export interface CronRunStore {
  /** The latest scheduled time recorded for this cron, for catching up after downtime. */
  lastScheduled(fn: string, cron: string): Promise<number | undefined>
  record(run: CronRunRecord): Promise<void>
}

/** Runs kept in memory. */
export class MemoryCronStore implements CronRunStore {
  readonly runs: CronRunRecord[] = []
  async lastScheduled(fn: string, cron: string): Promise<number | undefined> {
    const times = this.runs.filter((r) => r.function === fn && r.cron === cron).map((r) => r.scheduledTime)
    return times.length === 0 ? undefined : Math.max(...times)
  }
  async record(run: CronRunRecord): Promise<void> {
    this.runs.push(run)
  }
}

/** Options for {@link CronScheduler}. */
export interface CronSchedulerOptions {
  schedules: Schedule[]
  /** Runs the function's scheduled handler once. */
  run(spec: CronSpec, scheduledTime: number, attempt: number): Promise<CronRunResult>
  clock?: Clock
  store?: CronRunStore
  /** Retries after a failed attempt (default 3), unless the handler called noRetry(). */
  maxRetries?: number
  /** First retry delay; doubles each time, plus up to 20% jitter (default 1000 ms). */
  backoffMs?: number
  /** After downtime, run a missed schedule once at start (default true). */
  catchUp?: boolean
  /** Every recorded run, for logs and metrics. */
  onRecord?(run: CronRunRecord): void
}

interface State {
  schedule: Schedule
  timer: unknown
  running: Promise<CronRunRecord> | undefined
}

/**
 * Fires crons on time in their timezone, with the alarm feed's meaning: runs of one schedule never overlap (one due
 * while the last still runs is recorded as skipped), a failed run is retried with exponential backoff unless the
 * handler said noRetry, and after downtime a missed run fires once at start.
 *
 * @example
 * const scheduler = new CronScheduler({ schedules, run: (spec, at) => pool.run('scheduled', { cron: spec.cron, scheduledTime: at }) })
 * await scheduler.start()
 */
export class CronScheduler {
  readonly #opts: CronSchedulerOptions
  readonly #clock: Clock
  readonly #states: State[]
  #stopped = false

  /** @param options schedules, the runner, clock, store, retry and catch-up settings */
  constructor(options: CronSchedulerOptions) {
    this.#opts = options
    this.#clock = options.clock ?? SYSTEM_CLOCK
    this.#states = options.schedules.map((schedule) => ({ schedule, timer: undefined, running: undefined }))
  }

  /** Catches up missed runs (when enabled), then arms every schedule. */
  async start(): Promise<void> {
    const now = this.#clock.now()
    for (const state of this.#states) {
      if ((state.schedule.spec.catchUp ?? this.#opts.catchUp) !== false && this.#opts.store !== undefined) {
        const last = await this.#opts.store.lastScheduled(state.schedule.spec.function, state.schedule.spec.cron)
        const missed = last === undefined ? undefined : latestDue(state.schedule, last, now)
        if (missed !== undefined) void this.#due(state, missed)
      }
      this.#arm(state, now)
    }
  }

  /** Stops arming; runs in progress finish. */
  stop(): void {
    this.#stopped = true
    for (const s of this.#states) this.#clock.clearTimer(s.timer)
  }

  /** Resolves when every run in progress has ended. */
  async idle(): Promise<void> {
    await Promise.all(this.#states.map((s) => s.running))
  }

  /**
   * Runs a function's schedule now (`sovra trigger cron <fn>`), through the same retry and overlap rules.
   * @param fn the function
   * @param cron which of its crons (default the first)
   */
  async fire(fn: string, cron?: string): Promise<CronRunRecord> {
    const state = this.#states.find(
      (s) => s.schedule.spec.function === fn && (cron === undefined || s.schedule.spec.cron === cron),
    )
    if (state === undefined)
      throw new Error(`function "${fn}" has no cron${cron === undefined ? '' : ` ${JSON.stringify(cron)}`}`)
    return this.#due(state, this.#clock.now())
  }

  /**
   * The next run times of every schedule.
   * @param n how many per schedule
   */
  upcoming(n: number): Array<{ spec: CronSpec; times: number[] }> {
    return this.#states.map((s) => ({ spec: s.schedule.spec, times: s.schedule.upcoming(n, this.#clock.now()) }))
  }

  #arm(state: State, after: number): void {
    if (this.#stopped) return
    const at = state.schedule.next(after)
    if (at === undefined) return
    state.timer = this.#clock.setTimer(() => {
      // Arm from the due time, not from now: a late timer must not skip or repeat a slot.
      this.#arm(state, at)
      void this.#due(state, at)
    }, at - this.#clock.now())
  }

  #due(state: State, scheduledTime: number): Promise<CronRunRecord> {
    const { spec } = state.schedule
    if (state.running !== undefined) {
      return this.#record({
        function: spec.function,
        cron: spec.cron,
        scheduledTime,
        status: 'skipped',
        attempts: 0,
        error: 'the previous run was still going',
      })
    }
    const running = this.#runWithRetries(spec, scheduledTime).finally(() => {
      state.running = undefined
    })
    state.running = running
    return running
  }

  async #runWithRetries(spec: CronSpec, scheduledTime: number): Promise<CronRunRecord> {
    const max = this.#opts.maxRetries ?? 3
    for (let attempt = 1; ; attempt++) {
      let result: CronRunResult
      try {
        result = await this.#opts.run(spec, scheduledTime, attempt)
      } catch (error) {
        result = { ok: false, noRetry: false, error: (error as Error).message }
      }
      if (result.ok)
        return this.#record({
          function: spec.function,
          cron: spec.cron,
          scheduledTime,
          status: 'ok',
          attempts: attempt,
        })
      if (result.noRetry || attempt > max || this.#stopped) {
        return this.#record({
          function: spec.function,
          cron: spec.cron,
          scheduledTime,
          status: result.noRetry ? 'failed' : 'dead',
          attempts: attempt,
          error: result.error,
        })
      }
      const base = (this.#opts.backoffMs ?? 1000) * 2 ** (attempt - 1)
      await new Promise<void>((resolve) => this.#clock.setTimer(resolve, base + Math.floor(Math.random() * base * 0.2)))
    }
  }

  async #record(run: CronRunRecord): Promise<CronRunRecord> {
    await this.#opts.store?.record(run)
    this.#opts.onRecord?.(run)
    return run
  }
}

/** The latest time the schedule was due after `last` and not after `now` (bounded walk). */
function latestDue(schedule: Schedule, last: number, now: number): number | undefined {
  let found: number | undefined
  let t = last
  for (let i = 0; i < 100_000; i++) {
    const next = schedule.next(t)
    if (next === undefined || next > now) break
    found = next
    t = next
  }
  return found
}
