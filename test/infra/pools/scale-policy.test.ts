import { describe, expect, it } from 'vitest'

import { decideReplicas, type ScaleMemory, type ScaleObservation } from '../../../infra/pools/scale-policy.ts'
import { poolConfig } from '../../support/pools.ts'

const pool = poolConfig({
  name: 'qa',
  engine: 'llama',
  model: 'tiny:llama',
  min_replicas: 1,
  max_replicas: 4,
  target_inflight: 2,
  p95_budget_ms: 1000,
  scale_up_delay_s: 10,
  scale_down_delay_s: 60,
})
const idle = (now: number, current: number): ScaleObservation => ({
  now,
  current,
  outstanding: 0,
  queued: 0,
  p95Ms: undefined,
  surgeMin: undefined,
})

describe('decideReplicas', () => {
  it('brings a pool to min_replicas at once', () => {
    expect(decideReplicas(pool, idle(0, 0), {})).toMatchObject({ target: 1, reason: 'min_replicas' })
  })

  it('scales up for in-flight plus queued work only after scale_up_delay_s of sustained demand', () => {
    const m: ScaleMemory = {}
    const busy = (now: number): ScaleObservation => ({ ...idle(now, 1), outstanding: 4, queued: 3 })
    expect(decideReplicas(pool, busy(0), m)).toMatchObject({ target: 1, desired: 4 })
    expect(decideReplicas(pool, busy(9_999), m).target).toBe(1)
    expect(decideReplicas(pool, busy(10_000), m)).toMatchObject({ target: 4, reason: 'load' })
  })

  it('forgets a demand spike that ends before the delay', () => {
    const m: ScaleMemory = {}
    decideReplicas(pool, { ...idle(0, 1), outstanding: 6 }, m)
    decideReplicas(pool, idle(5_000, 1), m)
    expect(decideReplicas(pool, { ...idle(10_000, 1), outstanding: 6 }, m).target).toBe(1)
  })

  it('adds a replica while p95 is over budget with work present, never past max_replicas', () => {
    const m: ScaleMemory = {}
    const slow = (now: number, current: number): ScaleObservation => ({
      ...idle(now, current),
      outstanding: 1,
      p95Ms: 1500,
    })
    decideReplicas(pool, slow(0, 1), m)
    expect(decideReplicas(pool, slow(10_000, 1), m)).toMatchObject({
      target: 2,
      reason: 'p95 1500 ms over budget 1000 ms',
    })
    const atMax: ScaleMemory = {}
    decideReplicas(pool, slow(0, 4), atMax)
    expect(decideReplicas(pool, slow(10_000, 4), atMax).target).toBe(4)
    // Slow but idle: no reason to grow.
    expect(decideReplicas(pool, { ...idle(0, 1), p95Ms: 5000 }, {}).desired).toBe(1)
  })

  it('scales down one replica at a time after scale_down_delay_s of slack', () => {
    const m: ScaleMemory = {}
    expect(decideReplicas(pool, idle(0, 3), m).target).toBe(3)
    expect(decideReplicas(pool, idle(59_999, 3), m).target).toBe(3)
    expect(decideReplicas(pool, idle(60_000, 3), m)).toMatchObject({ target: 2, reason: 'idle' })
    expect(decideReplicas(pool, idle(60_001, 2), m).target).toBe(2)
    expect(decideReplicas(pool, idle(120_000, 2), m).target).toBe(1)
    expect(decideReplicas(pool, idle(999_999, 1), m).target).toBe(1)
  })

  it('holds a surge floor without delay, capped by max_replicas', () => {
    expect(decideReplicas(pool, { ...idle(0, 1), surgeMin: 3 }, {})).toMatchObject({
      target: 3,
      reason: 'surge window',
    })
    expect(decideReplicas(pool, { ...idle(0, 1), surgeMin: 9 }, {}).target).toBe(4)
    const m: ScaleMemory = {}
    expect(decideReplicas(pool, { ...idle(0, 3), surgeMin: 3 }, m).target).toBe(3)
    expect(decideReplicas(pool, { ...idle(600_000, 3), surgeMin: 3 }, m).target).toBe(3)
  })
})
