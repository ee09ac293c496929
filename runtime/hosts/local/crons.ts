import { parseSchedule } from '../../../triggers/cron/schedule.ts'
import {
  CronScheduler,
  MemoryCronStore,
  type CronRunResult,
  type CronRunStore,
} from '../../../triggers/cron/scheduler.ts'
import type { Clock } from '../../../triggers/cron/clock.ts'
import type { FunctionSet } from './functions.ts'
import type { HostLogger } from './observer.ts'

/** Where cron runs are recorded and the clock they run by. */
export interface CronOptions {
  store?: CronRunStore
  clock?: Clock
  /** Each attempt as it starts, with how it will end: `sovra/testing` waits on attempts in flight and reports them. */
  onAttempt?(attempt: CronAttempt): void
}

/** One attempt of a scheduled run, as {@link CronOptions.onAttempt} sees it. */
export interface CronAttempt {
  function: string
  cron: string
  scheduledTime: number
  /** 1 for the first attempt, then one more per retry. */
  attempt: number
  result: Promise<CronRunResult>
}

/**
 * The cron scheduler for every function's crons, running each through the function's isolate pool.
 * @param functions the loaded functions
 * @param options store and clock
 * @param log where runs are reported
 */
export function createScheduler(
  functions: FunctionSet,
  options: CronOptions | undefined,
  log: HostLogger,
): CronScheduler | undefined {
  const schedules = functions.all().flatMap(({ config }) =>
    config.crons.map((cron) =>
      parseSchedule({
        function: config.name,
        cron,
        timezone: config.timezone,
        startDate: config.startDate,
        stopDate: config.stopDate,
        catchUp: config.catchUpCrons,
      }),
    ),
  )
  if (schedules.length === 0) return undefined
  return new CronScheduler({
    schedules,
    store: options?.store ?? new MemoryCronStore(),
    ...(options?.clock === undefined ? {} : { clock: options.clock }),
    run(spec, scheduledTime, attempt) {
      const result = (async (): Promise<CronRunResult> => {
        const fn = functions.get(spec.function)
        if (fn === undefined) return { ok: false, noRetry: true, error: `function "${spec.function}" is not loaded` }
        // Under the control plane, triggers run the stable version (no request id: never the canary).
        const pool = fn.versions?.pick(undefined, {}) ?? fn.pool
        const r = await pool.run('scheduled', { cron: spec.cron, scheduledTime }, { trigger: 'cron' })
        return { ok: r.ok, noRetry: r.noRetry, error: r.detail }
      })()
      options?.onAttempt?.({ function: spec.function, cron: spec.cron, scheduledTime, attempt, result })
      return result
    },
    onRecord(run) {
      const fields = {
        function: run.function,
        cron: run.cron,
        scheduled_time: new Date(run.scheduledTime).toISOString(),
        status: run.status,
        attempts: run.attempts,
        error: run.error,
      }
      if (run.status === 'ok') log.info(fields, 'cron run')
      else log.warn(fields, 'cron run')
    },
  })
}
