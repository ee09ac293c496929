import { describe, expect, it } from 'vitest'
import {
  activeSurge,
  businessCalendar,
  businessDaysOfMonth,
  nextSurgeWindows,
  surgeDays,
  surgeWindows,
  validateSurgeRule,
  zonedTimeToEpoch,
} from '../../../infra/pools/calendar.ts'
import type { SurgeRule } from '../../../infra/pools/calendar.ts'
import { SovraError } from '../../../runtime/core/errors.ts'

const MIN = 60_000

/** The rule from the brief: last 3 business days, 08:00-20:00 Tokyo, 4 replicas, 30 minutes warmup. */
const tokyo: SurgeRule = {
  calendar: 'month-end',
  business_days: 3,
  start: '08:00',
  end: '20:00',
  timezone: 'Asia/Tokyo',
  min_replicas: 4,
  warmup_minutes: 30,
}

function configError(fn: () => unknown): SovraError {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(SovraError)
    expect((e as SovraError).code).toBe('ERR_CONFIG')
    return e as SovraError
  }
  throw new Error('expected an ERR_CONFIG error, nothing was thrown')
}

describe('business calendar', () => {
  it('defaults to a Saturday/Sunday weekend and no holidays', () => {
    const cal = businessCalendar()
    expect(cal.weekend).toEqual([0, 6])
    expect(cal.holidays.size).toBe(0)
  })

  it('accepts short and full day names in any case', () => {
    expect(businessCalendar({ weekend: ['FRI', 'Saturday'] }).weekend).toEqual([5, 6])
    expect(businessCalendar({ weekend: [] }).weekend).toEqual([])
  })

  it('lists the business days of a month, skipping weekends and holidays', () => {
    const days = businessDaysOfMonth(2026, 11, businessCalendar({ holidays: ['2026-11-23'] }))
    expect(days).toHaveLength(20)
    expect(days.slice(0, 2)).toEqual(['2026-11-02', '2026-11-03'])
    expect(days).not.toContain('2026-11-23')
    expect(days).not.toContain('2026-11-28')
  })

  it('rejects a bad weekday name and an impossible date, naming the value and the valid form', () => {
    const e = configError(() =>
      businessCalendar({ weekend: ['sat', 'saturnday'], holidays: ['2026-11-23', '2026-02-30', '2026/12/31'] }),
    )
    expect(e.message).toContain('weekend[1]: expected a day name (sun, mon')
    expect(e.message).toContain('received "saturnday"')
    expect(e.message).toContain(
      `holidays[1]: expected a date 'YYYY-MM-DD' that exists in the calendar, received "2026-02-30"`,
    )
    expect(e.message).toContain('holidays[2]')
    expect(e.message).not.toContain('holidays[0]')
  })
})

describe('surgeDays', () => {
  it('takes the last 3 business days of November 2026; a holiday before them does not matter', () => {
    expect(surgeDays(tokyo, 2026, 11, businessCalendar())).toEqual(['2026-11-26', '2026-11-27', '2026-11-30'])
    expect(surgeDays(tokyo, 2026, 11, businessCalendar({ holidays: ['2026-11-23'] }))).toEqual([
      '2026-11-26',
      '2026-11-27',
      '2026-11-30',
    ])
  })

  it('moves back past a holiday on the last day (Monday 2026-11-30)', () => {
    expect(surgeDays(tokyo, 2026, 11, businessCalendar({ holidays: ['2026-11-30'] }))).toEqual([
      '2026-11-25',
      '2026-11-26',
      '2026-11-27',
    ])
  })

  it("moves back past New Year's Eve in December 2026", () => {
    expect(surgeDays(tokyo, 2026, 12, businessCalendar({ holidays: ['2026-12-31'] }))).toEqual([
      '2026-12-28',
      '2026-12-29',
      '2026-12-30',
    ])
  })

  it('month-start skips a weekend at the start of the month (August 2026 starts on a Saturday)', () => {
    const rule: SurgeRule = { ...tokyo, calendar: 'month-start', business_days: 2 }
    expect(surgeDays(rule, 2026, 8, businessCalendar())).toEqual(['2026-08-03', '2026-08-04'])
  })

  it('honours a Friday/Saturday weekend', () => {
    const cal = businessCalendar({ weekend: ['fri', 'sat'] })
    expect(surgeDays({ ...tokyo, calendar: 'month-start', business_days: 2 }, 2026, 8, cal)).toEqual([
      '2026-08-02',
      '2026-08-03',
    ])
    // November 2026 ends Thu 26, Fri 27 (off), Sat 28 (off), Sun 29, Mon 30.
    expect(surgeDays(tokyo, 2026, 11, cal)).toEqual(['2026-11-26', '2026-11-29', '2026-11-30'])
  })
})

describe('zonedTimeToEpoch', () => {
  it('maps Tokyo 08:00 to 23:00 UTC the day before', () => {
    expect(zonedTimeToEpoch('2026-11-25', '08:00', 'Asia/Tokyo')).toBe(Date.UTC(2026, 10, 24, 23, 0))
  })

  it('follows New York across the spring-forward change on 2026-03-08', () => {
    expect(zonedTimeToEpoch('2026-03-07', '08:00', 'America/New_York')).toBe(Date.UTC(2026, 2, 7, 13, 0))
    expect(zonedTimeToEpoch('2026-03-08', '08:00', 'America/New_York')).toBe(Date.UTC(2026, 2, 8, 12, 0))
    expect(zonedTimeToEpoch('2026-03-08', '01:59', 'America/New_York')).toBe(Date.UTC(2026, 2, 8, 6, 59))
  })

  it('maps a time in the spring-forward gap to the later valid instant (02:30 -> 03:30 EDT)', () => {
    expect(zonedTimeToEpoch('2026-03-08', '02:30', 'America/New_York')).toBe(Date.UTC(2026, 2, 8, 7, 30))
  })

  it('maps a repeated fall-back time to the earlier instant (01:30 EDT)', () => {
    expect(zonedTimeToEpoch('2026-11-01', '01:30', 'America/New_York')).toBe(Date.UTC(2026, 10, 1, 5, 30))
  })

  it('reads 24:00 as midnight at the end of the day', () => {
    expect(zonedTimeToEpoch('2026-12-31', '24:00', 'Asia/Tokyo')).toBe(Date.UTC(2026, 11, 31, 15, 0))
  })

  it('rejects a malformed day, time or zone', () => {
    expect(configError(() => zonedTimeToEpoch('2026-02-30', '08:00', 'UTC')).message).toContain('received "2026-02-30"')
    expect(configError(() => zonedTimeToEpoch('2026-02-03', '8:00', 'UTC')).message).toContain('received "8:00"')
    expect(configError(() => zonedTimeToEpoch('2026-02-03', '08:00', 'Mars/Olympus')).message).toContain(
      '"Mars/Olympus"',
    )
  })
})

describe('surgeWindows', () => {
  const cal = businessCalendar({ holidays: ['2026-11-30', '2026-12-31'] })

  it('opens Tokyo windows at 23:00 UTC the day before, warming 30 minutes earlier', () => {
    const ws = surgeWindows([tokyo], cal, Date.UTC(2026, 10, 1), Date.UTC(2026, 11, 1))
    expect(ws.map((w) => w.day)).toEqual(['2026-11-25', '2026-11-26', '2026-11-27'])
    expect(ws[0]).toEqual({
      rule: 0,
      day: '2026-11-25',
      minReplicas: 4,
      warmFrom: Date.UTC(2026, 10, 24, 22, 30),
      opensAt: Date.UTC(2026, 10, 24, 23, 0),
      closesAt: Date.UTC(2026, 10, 25, 11, 0),
    })
  })

  it('finds a window by its local month even when it opens in the previous UTC month', () => {
    // 2026-09-01 08:00 Tokyo is 2026-08-31 23:00 UTC.
    const rule: SurgeRule = { ...tokyo, calendar: 'month-start', business_days: 1 }
    const ws = surgeWindows([rule], cal, Date.UTC(2026, 7, 31, 0, 0), Date.UTC(2026, 7, 31, 23, 30))
    expect(ws.map((w) => [w.day, w.opensAt])).toEqual([['2026-09-01', Date.UTC(2026, 7, 31, 23, 0)]])
  })

  it('includes a window whose warmup alone overlaps the range, and not one that closed at its start', () => {
    const [w] = surgeWindows([tokyo], cal, Date.UTC(2026, 10, 24, 22, 0), Date.UTC(2026, 10, 24, 22, 31))
    expect(w?.day).toBe('2026-11-25')
    expect(surgeWindows([tokyo], cal, Date.UTC(2026, 10, 24, 22, 0), Date.UTC(2026, 10, 24, 22, 30))).toEqual([])
    expect(surgeWindows([tokyo], cal, Date.UTC(2026, 10, 27, 11, 0), Date.UTC(2026, 10, 27, 22, 0))).toEqual([])
  })

  it('keeps New York opening at 08:00 local across the DST change', () => {
    const ny: SurgeRule = {
      ...tokyo,
      calendar: 'month-start',
      business_days: 10,
      timezone: 'America/New_York',
      warmup_minutes: 0,
    }
    const ws = surgeWindows([ny], businessCalendar({ weekend: [] }), Date.UTC(2026, 2, 7), Date.UTC(2026, 2, 9))
    expect(ws.map((w) => [w.day, new Date(w.opensAt).toISOString()])).toEqual([
      ['2026-03-06', '2026-03-06T13:00:00.000Z'],
      ['2026-03-07', '2026-03-07T13:00:00.000Z'],
      ['2026-03-08', '2026-03-08T12:00:00.000Z'],
    ])
  })

  it('merges several rules sorted by warmFrom', () => {
    const early: SurgeRule = { ...tokyo, start: '06:00', end: '07:00', min_replicas: 2, warmup_minutes: 0 }
    const ws = surgeWindows([tokyo, early], cal, Date.UTC(2026, 10, 24), Date.UTC(2026, 10, 25))
    expect(ws.map((w) => [w.rule, w.day])).toEqual([
      [1, '2026-11-25'],
      [0, '2026-11-25'],
    ])
  })

  it('validates every rule, naming its index', () => {
    const e = configError(() => surgeWindows([tokyo, { ...tokyo, warmup_minutes: -5 }], cal, 0, 1))
    expect(e.message).toBe('surge[1].warmup_minutes: expected a number of minutes >= 0, received -5')
  })
})

describe('nextSurgeWindows', () => {
  const cal = businessCalendar({ holidays: ['2026-11-30', '2026-12-31'] })

  it('crosses into December after the last November window closed (Tokyo 20:00 = 11:00 UTC)', () => {
    const ws = nextSurgeWindows([tokyo], cal, Date.parse('2026-11-27T12:00:00Z'), 2)
    expect(ws.map((w) => w.day)).toEqual(['2026-12-28', '2026-12-29'])
    expect(ws[0]?.opensAt).toBe(Date.UTC(2026, 11, 27, 23, 0))
  })

  it('still returns a window that is open now', () => {
    const ws = nextSurgeWindows([tokyo], cal, Date.parse('2026-11-27T10:59:00Z'), 2)
    expect(ws.map((w) => w.day)).toEqual(['2026-11-27', '2026-12-28'])
  })

  it('crosses the year without repeating a window', () => {
    const ws = nextSurgeWindows([tokyo], cal, Date.parse('2026-12-30T12:00:00Z'), 4)
    expect(ws.map((w) => w.day)).toEqual(['2027-01-27', '2027-01-28', '2027-01-29', '2027-02-24'])
  })

  it('returns a window that spans two UTC months once', () => {
    // 2026-09-01 Tokyo warms from 22:30 UTC on 08-31 and closes 11:00 UTC on 09-01.
    const rule: SurgeRule = { ...tokyo, calendar: 'month-start', business_days: 1 }
    const ws = nextSurgeWindows([rule], cal, Date.parse('2026-08-31T12:00:00Z'), 2)
    expect(ws.map((w) => w.day)).toEqual(['2026-09-01', '2026-10-01'])
  })

  it('gives up after 24 months when no day ever qualifies', () => {
    const never = businessCalendar({ weekend: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] })
    expect(nextSurgeWindows([tokyo], never, Date.UTC(2026, 0, 1), 3)).toEqual([])
    expect(nextSurgeWindows([tokyo], cal, Date.UTC(2026, 0, 1), 0)).toEqual([])
  })
})

describe('activeSurge', () => {
  const cal = businessCalendar({ holidays: ['2026-11-30'] })
  // 2026-11-25 Tokyo: warm from 22:30 UTC on the 24th, open 23:00 UTC, close 11:00 UTC on the 25th.

  it('is undefined before warmFrom', () => {
    expect(activeSurge([tokyo], cal, Date.UTC(2026, 10, 24, 22, 30) - 1)).toBeUndefined()
  })

  it('is in warmup between warmFrom and opensAt', () => {
    const a = activeSurge([tokyo], cal, Date.UTC(2026, 10, 24, 22, 30))
    expect(a).toMatchObject({ minReplicas: 4, phase: 'warmup', window: { day: '2026-11-25' } })
    expect(activeSurge([tokyo], cal, Date.UTC(2026, 10, 24, 23, 0) - MIN)?.phase).toBe('warmup')
  })

  it('is open from opensAt until just before closesAt', () => {
    expect(activeSurge([tokyo], cal, Date.UTC(2026, 10, 24, 23, 0))?.phase).toBe('open')
    expect(activeSurge([tokyo], cal, Date.UTC(2026, 10, 25, 11, 0) - 1)?.phase).toBe('open')
  })

  it('is undefined once closed', () => {
    expect(activeSurge([tokyo], cal, Date.UTC(2026, 10, 25, 11, 0))).toBeUndefined()
  })

  it('picks the highest min_replicas when windows overlap', () => {
    const big: SurgeRule = { ...tokyo, start: '12:00', end: '13:00', min_replicas: 9, warmup_minutes: 0 }
    const a = activeSurge([tokyo, big], cal, Date.UTC(2026, 10, 25, 3, 30))
    expect(a).toMatchObject({ minReplicas: 9, phase: 'open', window: { rule: 1 } })
    expect(activeSurge([tokyo, big], cal, Date.UTC(2026, 10, 25, 4, 0))).toMatchObject({
      minReplicas: 4,
      window: { rule: 0 },
    })
  })
})

describe('validateSurgeRule', () => {
  it('accepts the example rule and an end of 24:00', () => {
    expect(() => validateSurgeRule(tokyo, 'surge[0]')).not.toThrow()
    expect(() =>
      validateSurgeRule({ ...tokyo, end: '24:00', min_replicas: 0, warmup_minutes: 0 }, 'surge[0]'),
    ).not.toThrow()
  })

  it('names the field, the value and what is valid', () => {
    const at = (patch: Partial<SurgeRule>): string =>
      configError(() => validateSurgeRule({ ...tokyo, ...patch }, 'pools.chat.surge[2]')).message
    expect(at({ business_days: 0 })).toBe(
      'pools.chat.surge[2].business_days: expected an integer from 1 to 23, received 0',
    )
    expect(at({ business_days: 24 })).toContain('received 24')
    expect(at({ start: '8:00' })).toBe(
      `pools.chat.surge[2].start: expected a time 'HH:MM' from 00:00 to 23:59, received "8:00"`,
    )
    expect(at({ start: '24:00' })).toContain('.start:')
    expect(at({ end: '25:00' })).toContain(`.end: expected a time 'HH:MM' from 00:00 to 24:00, received "25:00"`)
    expect(at({ end: '08:00' })).toBe('pools.chat.surge[2].end: expected a time after start "08:00", received "08:00"')
    expect(at({ timezone: 'Asia/Tokio' })).toBe(
      'pools.chat.surge[2].timezone: expected an IANA time zone such as "Asia/Tokyo", received "Asia/Tokio"',
    )
    expect(at({ min_replicas: 1.5 })).toBe('pools.chat.surge[2].min_replicas: expected an integer >= 0, received 1.5')
    expect(at({ min_replicas: -1 })).toContain('received -1')
    expect(at({ calendar: 'quarter-end' as SurgeRule['calendar'] })).toContain(
      '.calendar: expected "month-end" or "month-start", received "quarter-end"',
    )
  })

  it('reports every issue at once', () => {
    const msg = configError(() =>
      validateSurgeRule({ ...tokyo, business_days: 0, warmup_minutes: -1 }, 'surge[0]'),
    ).message
    expect(msg).toContain('surge[0].business_days')
    expect(msg).toContain('surge[0].warmup_minutes')
  })
})
