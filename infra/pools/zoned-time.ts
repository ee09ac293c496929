import { SovraError } from '../../runtime/core/errors.ts'

const DAY_MS = 86_400_000
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/
const TIME_RE = /^(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$/

/** A calendar date without a time zone. */
export interface LocalDate {
  year: number
  /** 1-12 */
  month: number
  day: number
}

/**
 * Parses a 'YYYY-MM-DD' date that exists in the proleptic Gregorian calendar; undefined for anything else
 * ('2026-02-30', '2026-1-5').
 * @param text the date
 */
export function parseLocalDate(text: string): LocalDate | undefined {
  const m = DATE_RE.exec(text)
  if (m === null) return undefined
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const d = new Date(Date.UTC(year, month - 1, day))
  // Date.UTC rolls '02-30' over to March; a date that does not round-trip does not exist.
  return d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day
    ? { year, month, day }
    : undefined
}

/**
 * Parses 'HH:MM' (00:00 to 23:59, and '24:00' for the end of a day) into minutes after midnight; undefined otherwise.
 * @param text the time
 */
export function parseClockTime(text: string): number | undefined {
  const m = TIME_RE.exec(text)
  if (m === null) return undefined
  return Number(m[1] ?? m[3]) * 60 + Number(m[2] ?? m[4])
}

/**
 * Formats a date as 'YYYY-MM-DD'.
 * @param date the date
 */
export function formatLocalDate({ year, month, day }: LocalDate): string {
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`
}

const formatters = new Map<string, Intl.DateTimeFormat>()

/**
 * Returns a cached formatter that prints wall-clock fields in a zone; throws ERR_CONFIG for an unknown zone.
 * @param timeZone an IANA zone name such as 'Asia/Tokyo'
 */
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone)
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      })
    } catch (cause) {
      throw new SovraError(
        'ERR_CONFIG',
        `unknown time zone ${JSON.stringify(timeZone)}; expected an IANA name such as "Asia/Tokyo"`,
        { cause },
      )
    }
    formatters.set(timeZone, f)
  }
  return f
}

/**
 * Tells whether Intl knows a time zone name (it throws RangeError for an unknown one).
 * @param timeZone the name to check
 */
export function isKnownTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone)
    return true
  } catch {
    return false
  }
}

/**
 * Returns the wall-clock time of an instant in a zone, as epoch ms of the same fields read as UTC (seconds kept,
 * milliseconds dropped).
 * @param epochMs the instant
 * @param timeZone an IANA zone name
 */
function wallClock(epochMs: number, timeZone: string): number {
  const f: Record<string, number> = {}
  for (const p of formatter(timeZone).formatToParts(epochMs)) if (p.type !== 'literal') f[p.type] = Number(p.value)
  return Date.UTC(
    f['year'] ?? 0,
    (f['month'] ?? 1) - 1,
    f['day'] ?? 1,
    f['hour'] ?? 0,
    f['minute'] ?? 0,
    f['second'] ?? 0,
  )
}

/**
 * Returns the local calendar date of an instant in a zone.
 * @param epochMs the instant
 * @param timeZone an IANA zone name
 */
export function localDateOf(epochMs: number, timeZone: string): LocalDate {
  const d = new Date(wallClock(epochMs, timeZone))
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() }
}

/**
 * Converts a local wall time in a zone to epoch ms, correct across DST changes. A time that occurs twice (the
 * fall-back overlap) maps to the earlier instant; a time that does not exist (the spring-forward gap) maps to the
 * later valid instant, shifted forward by the gap, as Temporal's 'compatible' disambiguation does
 * (ref: tc39.es/proposal-temporal, GetPossibleEpochNanoseconds), e.g. 02:30 on 2026-03-08 in New York is 03:30 EDT.
 * Throws ERR_CONFIG for a malformed day or time, or an unknown zone.
 * @param day a local date 'YYYY-MM-DD'
 * @param time a local time 'HH:MM'; '24:00' is midnight at the end of the day
 * @param timeZone an IANA zone name such as 'America/New_York'
 * @example
 * zonedTimeToEpoch('2026-11-25', '08:00', 'Asia/Tokyo') === Date.UTC(2026, 10, 24, 23, 0) // true
 */
export function zonedTimeToEpoch(day: string, time: string, timeZone: string): number {
  const date = parseLocalDate(day)
  if (date === undefined)
    throw new SovraError('ERR_CONFIG', `expected a date 'YYYY-MM-DD' that exists, received ${JSON.stringify(day)}`)
  const minutes = parseClockTime(time)
  if (minutes === undefined)
    throw new SovraError('ERR_CONFIG', `expected a time 'HH:MM' from 00:00 to 24:00, received ${JSON.stringify(time)}`)
  const wall = Date.UTC(date.year, date.month - 1, date.day, 0, minutes)
  // Offsets a day either side bracket any single transition; real zones never change twice within two days.
  const candidates = [wall - DAY_MS, wall + DAY_MS].map((probe) => wall - (wallClock(probe, timeZone) - probe))
  const valid = candidates.filter((t) => wallClock(t, timeZone) === wall)
  return valid.length > 0 ? Math.min(...valid) : Math.max(...candidates)
}
