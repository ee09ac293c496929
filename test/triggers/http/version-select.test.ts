import { describe, expect, it } from 'vitest'

import { bucketOf, selectVersion, type RoutingState } from '../../../triggers/http/version-select.ts'

const state: RoutingState = {
  stable: 'v1',
  canary: { version: 'v2', weight: 10 },
  pins: [{ attribute: 'tenant', value: 'legal', version: 'v1' }],
}

describe('selectVersion', () => {
  it('sends 10% +- 2% of 10,000 request ids to a 10% canary', () => {
    let canary = 0
    for (let i = 0; i < 10_000; i++) if (selectVersion(state, { requestId: `req-${i}` }).version === 'v2') canary++
    expect(canary).toBeGreaterThanOrEqual(800)
    expect(canary).toBeLessThanOrEqual(1200)
  })

  it('is deterministic per request id', () => {
    for (let i = 0; i < 200; i++) {
      const id = crypto.randomUUID()
      expect(selectVersion(state, { requestId: id })).toEqual(selectVersion(state, { requestId: id }))
    }
    expect(bucketOf('abc')).toBe(bucketOf('abc'))
  })

  it('pins override the canary; triggers without a request id get stable', () => {
    for (let i = 0; i < 1000; i++)
      expect(selectVersion(state, { requestId: `req-${i}`, attributes: { tenant: 'legal' } })).toEqual({
        version: 'v1',
        reason: 'pin',
      })
    expect(
      selectVersion(
        { ...state, pins: [{ attribute: 'tenant', value: 'audit', version: 'v2' }] },
        { attributes: { tenant: 'audit' } },
      ),
    ).toEqual({ version: 'v2', reason: 'pin' })
    expect(selectVersion(state, {})).toEqual({ version: 'v1', reason: 'stable' })
  })

  it('weight 0 sends nothing to the canary and weight 100 everything', () => {
    const ids = Array.from({ length: 500 }, (_, i) => `r${i}`)
    expect(
      ids.every(
        (id) => selectVersion({ ...state, canary: { version: 'v2', weight: 0 } }, { requestId: id }).version === 'v1',
      ),
    ).toBe(true)
    expect(
      ids.every(
        (id) => selectVersion({ ...state, canary: { version: 'v2', weight: 100 } }, { requestId: id }).version === 'v2',
      ),
    ).toBe(true)
  })
})
