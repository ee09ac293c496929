import { describe, expect, it } from 'vitest'

import { isoInZone } from '../../../triggers/cron/schedule.ts'

describe('isoInZone', () => {
  it('writes an instant in its zone with the offset, daylight saving included', () => {
    const t = Date.UTC(2026, 11, 1, 0, 0, 0) // 2026-12-01T00:00:00Z
    expect(isoInZone(t)).toBe('2026-12-01T00:00:00Z')
    expect(isoInZone(t, 'Asia/Tokyo')).toBe('2026-12-01T09:00:00+09:00')
    expect(isoInZone(t, 'America/New_York')).toBe('2026-11-30T19:00:00-05:00')
    expect(isoInZone(Date.UTC(2026, 6, 1, 12, 30, 5), 'Europe/Berlin')).toBe('2026-07-01T14:30:05+02:00')
    expect(isoInZone(Date.UTC(2026, 0, 1, 12, 30, 5), 'Europe/Berlin')).toBe('2026-01-01T13:30:05+01:00')
    expect(isoInZone(Date.UTC(2026, 0, 1, 0, 0, 0), 'Asia/Kolkata')).toBe('2026-01-01T05:30:00+05:30')
  })

  it('names the same instant as the UTC form', () => {
    const t = Date.UTC(2026, 2, 29, 1, 15, 0)
    for (const zone of ['Asia/Tokyo', 'Europe/London', 'America/Los_Angeles', 'Australia/Adelaide']) {
      expect(Date.parse(isoInZone(t, zone))).toBe(t)
    }
  })
})
