import { SovraError } from '../../runtime/core/errors.ts'
import {
  formatLocalDate,
  isKnownTimeZone,
  localDateOf,
  parseClockTime,
  parseLocalDate,
  zonedTimeToEpoch,
} from './zoned-time.ts'

export { zonedTimeToEpoch } from './zoned-time.ts'

const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const
const MINUTE_MS = 60_000
/** How far {@link nextSurgeWindows} looks ahead, in months. */
const SEARCH_MONTHS = 24

/** Which days are not business days: weekly days off and dated holidays. */
export interface BusinessCalendar {
  /** Days of the week off, 0 = Sunday .. 6 = Saturday. */
  weekend: readonly number[]
  /** Holidays as 'YYYY-MM-DD' local dates, read in each rule's time zone. */
  holidays: ReadonlySet<string>
}

/**
 * Builds a business calendar. Throws ERR_CONFIG listing every bad weekday name or holiday date.
 * @param opts `weekend`: day names ('sat', 'Sunday', case-insensitive; default Saturday and Sunday);
 *   `holidays`: dates 'YYYY-MM-DD'
 * @example
 * const cal = businessCalendar({ weekend: ['fri', 'sat'], holidays: ['2026-12-31'] })
 */
export function businessCalendar(
  opts: { weekend?: readonly string[]; holidays?: readonly string[] } = {},
): BusinessCalendar {
  const issues: string[] = []
  const weekend = new Set<number>()
  for (const [i, name] of (opts.weekend ?? ['sat', 'sun']).entries()) {
    const key = String(name).trim().toLowerCase()
    const day = key.length >= 3 ? WEEKDAYS.findIndex((w) => w === key || w.slice(0, 3) === key) : -1
    if (day < 0)
      issues.push(
        `weekend[${i}]: expected a day name (sun, mon, tue, wed, thu, fri, sat or the full name), received ${show(name)}`,
      )
    else weekend.add(day)
  }
  const holidays = new Set<string>()
  for (const [i, date] of (opts.holidays ?? []).entries()) {
    if (typeof date === 'string' && parseLocalDate(date) !== undefined) holidays.add(date)
    else issues.push(`holidays[${i}]: expected a date 'YYYY-MM-DD' that exists in the calendar, received ${show(date)}`)
  }
  if (issues.length > 0) throw new SovraError('ERR_CONFIG', `invalid business calendar: ${issues.join('; ')}`)
  return { weekend: [...weekend].sort((a, b) => a - b), holidays }
}

/** A warm surge: on some business days of each month, keep at least `min_replicas` between `start` and `end`. */
export interface SurgeRule {
  /** Count business days from the end or the start of each month. */
  calendar: 'month-end' | 'month-start'
  /** How many business days, 1 to 23. */
  business_days: number
  /** Local opening time 'HH:MM'. */
  start: string
  /** Local closing time 'HH:MM', after `start`; '24:00' is the end of the day. */
  end: string
  /** IANA time zone the days and times are read in, e.g. 'Asia/Tokyo'. */
  timezone: string
  /** Replicas to keep while the window is warming or open. */
  min_replicas: number
  /** Minutes before `start` to begin warming replicas. */
  warmup_minutes: number
}

/**
 * Checks a surge rule. Throws ERR_CONFIG listing every issue as `${path}.field: expected ..., received ...`.
 * @param rule the rule as read from config
 * @param path where the rule sits in the config, e.g. 'pools.chat.surge[0]'
 */
export function validateSurgeRule(rule: SurgeRule, path: string): void {
  const issues: string[] = []
  const check = (ok: boolean, field: keyof SurgeRule, expected: string): void => {
    if (!ok) issues.push(`${path}.${field}: expected ${expected}, received ${show(rule[field])}`)
  }
  check(rule.calendar === 'month-end' || rule.calendar === 'month-start', 'calendar', '"month-end" or "month-start"')
  check(
    Number.isInteger(rule.business_days) && rule.business_days >= 1 && rule.business_days <= 23,
    'business_days',
    'an integer from 1 to 23',
  )
  const start = typeof rule.start === 'string' ? parseClockTime(rule.start) : undefined
  const end = typeof rule.end === 'string' ? parseClockTime(rule.end) : undefined
  check(start !== undefined && start < 24 * 60, 'start', "a time 'HH:MM' from 00:00 to 23:59")
  check(end !== undefined, 'end', "a time 'HH:MM' from 00:00 to 24:00")
  if (start !== undefined && end !== undefined) check(end > start, 'end', `a time after start ${show(rule.start)}`)
  check(
    typeof rule.timezone === 'string' && isKnownTimeZone(rule.timezone),
    'timezone',
    'an IANA time zone such as "Asia/Tokyo"',
  )
  check(Number.isInteger(rule.min_replicas) && rule.min_replicas >= 0, 'min_replicas', 'an integer >= 0')
  check(Number.isFinite(rule.warmup_minutes) && rule.warmup_minutes >= 0, 'warmup_minutes', 'a number of minutes >= 0')
  if (issues.length > 0) throw new SovraError('ERR_CONFIG', issues.join('; '))
}

/** One surge window of one rule on one day. Times are epoch ms. */
export interface SurgeWindow {
  /** Index of the rule in the rules list. */
  rule: number
  /** The local date 'YYYY-MM-DD' in the rule's time zone. */
  day: string
  /** When to start warming replicas: `opensAt` less the rule's warmup. */
  warmFrom: number
  opensAt: number
  closesAt: number
  minReplicas: number
}

/**
 * Lists the business days of a month, ascending, as 'YYYY-MM-DD'.
 * @param year the year, e.g. 2026
 * @param month the month, 1-12
 * @param cal the business calendar
 */
export function businessDaysOfMonth(year: number, month: number, cal: BusinessCalendar): string[] {
  if (!Number.isInteger(year) || !Number.isInteger(month) || month < 1 || month > 12) {
    throw new SovraError(
      'ERR_CONFIG',
      `expected an integer year and a month from 1 to 12, received ${show(year)}-${show(month)}`,
    )
  }
  const days: string[] = []
  const length = new Date(Date.UTC(year, month, 0)).getUTCDate()
  for (let day = 1; day <= length; day++) {
    const date = formatLocalDate({ year, month, day })
    if (!cal.weekend.includes(new Date(Date.UTC(year, month - 1, day)).getUTCDay()) && !cal.holidays.has(date))
      days.push(date)
  }
  return days
}

/**
 * Returns the days a rule surges in a month: the last (month-end) or first (month-start) `business_days` business
 * days, ascending; fewer when the month has fewer business days.
 * @param rule the surge rule
 * @param year the year
 * @param month the month, 1-12
 * @param cal the business calendar
 */
export function surgeDays(rule: SurgeRule, year: number, month: number, cal: BusinessCalendar): string[] {
  const days = businessDaysOfMonth(year, month, cal)
  return rule.calendar === 'month-end'
    ? days.slice(Math.max(0, days.length - rule.business_days))
    : days.slice(0, rule.business_days)
}

/**
 * Lists every surge window whose [warmFrom, closesAt) overlaps [fromMs, untilMs), sorted by warmFrom. Validates the
 * rules first (ERR_CONFIG naming `surge[i].field`).
 * @param rules the surge rules; a window's `rule` is the index here
 * @param cal the business calendar
 * @param fromMs start of the range, epoch ms, inclusive
 * @param untilMs end of the range, epoch ms, exclusive
 * @example
 * surgeWindows([rule], businessCalendar(), Date.UTC(2026, 10, 1), Date.UTC(2026, 11, 1))
 */
export function surgeWindows(
  rules: readonly SurgeRule[],
  cal: BusinessCalendar,
  fromMs: number,
  untilMs: number,
): SurgeWindow[] {
  rules.forEach((rule, i) => validateSurgeRule(rule, `surge[${i}]`))
  const out: SurgeWindow[] = []
  if (!(untilMs > fromMs)) return out
  for (const [index, rule] of rules.entries()) {
    const warmupMs = rule.warmup_minutes * MINUTE_MS
    // A window closes at most a day after its local date starts, and opens at most `warmup` after the range ends:
    // scanning from the month before `fromMs` to the month of `untilMs + warmup` (local) finds every overlap.
    const first = monthIndex(localDateOf(fromMs, rule.timezone)) - 1
    const last = monthIndex(localDateOf(untilMs + warmupMs, rule.timezone))
    for (let m = first; m <= last; m++) {
      for (const day of surgeDays(rule, Math.floor(m / 12), (m % 12) + 1, cal)) {
        const opensAt = zonedTimeToEpoch(day, rule.start, rule.timezone)
        const closesAt = zonedTimeToEpoch(day, rule.end, rule.timezone)
        const warmFrom = opensAt - warmupMs
        if (warmFrom < untilMs && closesAt > fromMs)
          out.push({ rule: index, day, warmFrom, opensAt, closesAt, minReplicas: rule.min_replicas })
      }
    }
  }
  return out.sort((a, b) => a.warmFrom - b.warmFrom || a.rule - b.rule)
}

/**
 * Returns the next `count` surge windows not yet closed at `nowMs` (open or warming ones first), sorted by
 * warmFrom, looking at most 24 months ahead.
 * @param rules the surge rules
 * @param cal the business calendar
 * @param nowMs the current time, epoch ms
 * @param count how many windows to return at most
 */
export function nextSurgeWindows(
  rules: readonly SurgeRule[],
  cal: BusinessCalendar,
  nowMs: number,
  count: number,
): SurgeWindow[] {
  const out: SurgeWindow[] = []
  const now = new Date(nowMs)
  if (!(count > 0)) return out
  let from = nowMs
  // Month by month (UTC months): a window first seen in a later slice cannot warm before one seen in an earlier
  // slice, so appending slices keeps the list sorted; a window spanning two slices is kept once.
  for (let k = 1; k <= SEARCH_MONTHS + 1 && out.length < count; k++) {
    const until = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + k, 1)
    for (const w of surgeWindows(rules, cal, from, until)) {
      if (k === 1 || w.warmFrom >= from) out.push(w)
    }
    from = until
  }
  return out.slice(0, Math.max(0, count))
}

/**
 * Tells which surge covers `nowMs` (warmFrom <= nowMs < closesAt): the window with the most replicas when several
 * do, and whether it is still warming up (before opensAt) or open. Undefined when none covers it.
 * @param rules the surge rules
 * @param cal the business calendar
 * @param nowMs the current time, epoch ms
 */
export function activeSurge(
  rules: readonly SurgeRule[],
  cal: BusinessCalendar,
  nowMs: number,
): { minReplicas: number; window: SurgeWindow; phase: 'warmup' | 'open' } | undefined {
  let best: SurgeWindow | undefined
  for (const w of surgeWindows(rules, cal, nowMs, nowMs + 1))
    if (best === undefined || w.minReplicas > best.minReplicas) best = w
  return best && { minReplicas: best.minReplicas, window: best, phase: nowMs < best.opensAt ? 'warmup' : 'open' }
}

/** Counts months from year 0 so a loop can step across years. */
function monthIndex(date: { year: number; month: number }): number {
  return date.year * 12 + date.month - 1
}

/** Prints a received value in an error message: strings quoted, everything else as written. */
function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}
