import { Cron } from 'croner'
import { SovraError } from '../../runtime/core/errors.ts'

/** One cron of one function, with the alarm feed's options (OpenWhisk `/whisk.system/alarms/alarm`). */
export interface CronSpec {
  function: string
  /** 5 fields (minute first) or 6 (seconds first), as the alarms feed takes. */
  cron: string
  /** IANA timezone, e.g. Asia/Tokyo; default UTC. */
  timezone?: string | undefined
  /** No run before this time (ISO 8601 or epoch ms). */
  startDate?: string | number | undefined
  /** No run after this time. */
  stopDate?: string | number | undefined
  /** After downtime, run the latest missed time once at start (default: the scheduler's setting). */
  catchUp?: boolean | undefined
}

/** A parsed schedule: the next run after a time, or none once past the stop date. */
export interface Schedule {
  spec: CronSpec
  next(after: number): number | undefined
  /** The next `n` run times after `after`. */
  upcoming(n: number, after: number): number[]
}

function toDate(value: string | number, what: string, spec: CronSpec): Date {
  const d = new Date(value)
  if (Number.isNaN(d.getTime())) {
    throw new SovraError(
      'ERR_CONFIG',
      `function "${spec.function}": ${what} ${JSON.stringify(value)} is not a date; use ISO 8601 (2026-12-01T00:00:00+09:00) or epoch milliseconds`,
    )
  }
  return d
}

/**
 * Parses a cron with its timezone and start/stop dates, failing with the expression, what was wrong and what is
 * valid.
 * @param spec the cron and its options
 * @example
 * parseSchedule({ function: 'report', cron: '0 2 * * *', timezone: 'Asia/Tokyo' }).next(Date.now())
 */
export function parseSchedule(spec: CronSpec): Schedule {
  const fields = spec.cron.trim().split(/\s+/).length
  if (fields !== 5 && fields !== 6) {
    throw new SovraError(
      'ERR_CONFIG',
      `function "${spec.function}": cron ${JSON.stringify(spec.cron)} has ${fields} fields; use 5 (minute hour day month weekday) or 6 (second first)`,
    )
  }
  const start = spec.startDate === undefined ? undefined : toDate(spec.startDate, 'start_date', spec)
  const stop = spec.stopDate === undefined ? undefined : toDate(spec.stopDate, 'stop_date', spec)
  if (start !== undefined && stop !== undefined && stop <= start) {
    throw new SovraError(
      'ERR_CONFIG',
      `function "${spec.function}": stop_date ${stop.toISOString()} is not after start_date ${start.toISOString()}`,
    )
  }
  let cron: Cron
  try {
    cron = new Cron(spec.cron, {
      paused: true,
      ...(spec.timezone === undefined ? {} : { timezone: spec.timezone }),
      ...(start === undefined ? {} : { startAt: start }),
      ...(stop === undefined ? {} : { stopAt: stop }),
    })
    cron.nextRun(new Date(0))
  } catch (error) {
    throw new SovraError(
      'ERR_CONFIG',
      `function "${spec.function}": invalid schedule ${JSON.stringify(spec.cron)}${spec.timezone === undefined ? '' : ` in ${spec.timezone}`}: ${(error as Error).message}`,
      { cause: error },
    )
  }
  return {
    spec,
    next: (after) => cron.nextRun(new Date(after))?.getTime() ?? undefined,
    upcoming: (n, after) => cron.nextRuns(n, new Date(after)).map((d) => d.getTime()),
  }
}

/**
 * An instant as ISO 8601 in a time zone, with its offset (`2026-12-01T09:00:00+09:00`), so a schedule reads in the
 * zone it was written for; UTC gives `...Z`.
 * @param epochMs the instant
 * @param timeZone an IANA zone (default UTC)
 */
export function isoInZone(epochMs: number, timeZone = 'UTC'): string {
  if (timeZone === 'UTC') return new Date(epochMs).toISOString().replace('.000Z', 'Z')
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
      .formatToParts(new Date(epochMs))
      .map((p) => [p.type, p.value]),
  ) as Record<string, string>
  const local = Date.UTC(
    Number(parts['year']),
    Number(parts['month']) - 1,
    Number(parts['day']),
    Number(parts['hour']),
    Number(parts['minute']),
    Number(parts['second']),
  )
  const offsetMin = Math.round((local - Math.floor(epochMs / 1000) * 1000) / 60_000)
  const sign = offsetMin < 0 ? '-' : '+'
  const abs = Math.abs(offsetMin)
  const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`
  return `${parts['year']}-${parts['month']}-${parts['day']}T${parts['hour']}:${parts['minute']}:${parts['second']}${offset}`
}
