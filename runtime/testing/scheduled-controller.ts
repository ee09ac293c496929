import type { ScheduledController } from '../core/index.ts'

/** Options for {@link createScheduledController}: Cloudflare's `FetcherScheduledOptions`. */
export interface ScheduledControllerOptions {
  /** When the run was due (default now). */
  scheduledTime?: Date | number
  /** The cron expression that fired (default ""). */
  cron?: string
}

/** A ScheduledController for a test, which also tells whether the handler called `noRetry()`. */
export interface TestScheduledController extends ScheduledController {
  /** Always "scheduled", as on Cloudflare. */
  readonly type: 'scheduled'
  /** True once the handler called `controller.noRetry()`. */
  readonly noRetryCalled: boolean
}

/**
 * Creates the first argument of a `scheduled` handler for calling it directly (`cloudflare:test`'s
 * `createScheduledController`, same options and defaults).
 * @param options the scheduled time (Date or epoch ms; default now) and the cron expression (default "")
 * @example
 * const controller = createScheduledController({ scheduledTime: new Date('2026-11-27T17:00:00Z'), cron: '0 2 * * *' })
 * const ctx = createExecutionContext()
 * await worker.scheduled(controller, env, ctx)
 * await waitOnExecutionContext(ctx)
 */
export function createScheduledController(options: ScheduledControllerOptions = {}): TestScheduledController {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(
      `createScheduledController: expected { scheduledTime?, cron? }, received ${options === null ? 'null' : typeof options}`,
    )
  }
  const scheduledTime = Number(options.scheduledTime ?? Date.now())
  if (!Number.isFinite(scheduledTime)) {
    throw new TypeError(
      `createScheduledController: scheduledTime must be a Date or epoch milliseconds, received ${String(options.scheduledTime)}`,
    )
  }
  const cron = String(options.cron ?? '')
  let noRetryCalled = false
  return {
    type: 'scheduled',
    cron,
    scheduledTime,
    noRetry() {
      noRetryCalled = true
    },
    get noRetryCalled() {
      return noRetryCalled
    },
  }
}
