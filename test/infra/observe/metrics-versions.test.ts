import { describe, expect, it } from 'vitest'

import { createPromMetrics, MAX_VERSIONS_PER_FUNCTION } from '../../../infra/observe/metrics.ts'
import type { InvocationRecord } from '../../../runtime/isolate/pool.ts'

const record = (fn: string, version: string, status = 200): InvocationRecord => ({
  invocation: { id: 'i', function: fn, version, trigger: 'http' },
  status,
  outcome: status < 500 ? 'ok' : 'error',
  durationMs: 3,
  queuedMs: 1,
  error: undefined,
  waitUntilErrors: [],
  fields: undefined,
})

/** The versions a scrape shows for a function in one metric. */
const versionsIn = (body: string, metric: string, fn: string): string[] =>
  [...body.matchAll(new RegExp(`^${metric}\\{[^}]*function="${fn}",version="([^"]+)"`, 'gm'))]
    .map((m) => m[1] as string)
    .filter((v, i, all) => all.indexOf(v) === i)
    .sort()

describe('createPromMetrics: the version label', () => {
  it('counts each version of a function apart, in the counter and both latency histograms', async () => {
    const metrics = createPromMetrics()
    metrics.onInvocation(record('ask', 'ask@aaaaaaaaaaaa-11111111'))
    metrics.onInvocation(record('ask', 'ask@aaaaaaaaaaaa-11111111'))
    metrics.onInvocation(record('ask', 'ask@bbbbbbbbbbbb-22222222', 500))
    const { body } = await metrics.render()
    expect(body).toContain(
      'sovra_invocations_total{function="ask",version="ask@aaaaaaaaaaaa-11111111",trigger="http",status="200",outcome="ok"} 2',
    )
    expect(body).toContain(
      'sovra_invocations_total{function="ask",version="ask@bbbbbbbbbbbb-22222222",trigger="http",status="500",outcome="error"} 1',
    )
    expect(body).toContain(
      'sovra_invocation_duration_seconds_count{function="ask",version="ask@bbbbbbbbbbbb-22222222",trigger="http",status="500"} 1',
    )
    expect(body).toContain('sovra_invocation_queue_seconds_count{function="ask",version="ask@aaaaaaaaaaaa-11111111"} 2')
  })

  it('keeps at most MAX_VERSIONS_PER_FUNCTION versions per function, dropping the least recently used', async () => {
    const metrics = createPromMetrics()
    // `sovra dev` makes a version per save; "stable" keeps serving throughout, the others come and go.
    metrics.onInvocation(record('ask', 'stable'))
    for (let i = 0; i < MAX_VERSIONS_PER_FUNCTION + 3; i++) {
      metrics.onInvocation(record('ask', `save-${i}`))
      metrics.onInvocation(record('ask', 'stable', 500))
      // Another function's versions are counted on their own.
      metrics.onInvocation(record('other', 'v1'))
    }
    const { body } = await metrics.render()
    const kept = ['stable', ...Array.from({ length: MAX_VERSIONS_PER_FUNCTION - 1 }, (_, i) => `save-${i + 4}`)].sort()
    for (const metric of [
      'sovra_invocations_total',
      'sovra_invocation_duration_seconds_count',
      'sovra_invocation_queue_seconds_count',
    ]) {
      expect(versionsIn(body, metric, 'ask')).toEqual(kept)
      expect(versionsIn(body, metric, 'other')).toEqual(['v1'])
    }
    // The version used throughout kept every count, its 200 (first used before any eviction) and its 500s.
    expect(body).toContain(
      'sovra_invocations_total{function="ask",version="stable",trigger="http",status="200",outcome="ok"} 1',
    )
    expect(body).toContain(
      `sovra_invocations_total{function="ask",version="stable",trigger="http",status="500",outcome="error"} ${MAX_VERSIONS_PER_FUNCTION + 3}`,
    )
    // A dropped version that serves again starts over.
    metrics.onInvocation(record('ask', 'save-0'))
    const again = (await metrics.render()).body
    expect(again).toContain(
      'sovra_invocations_total{function="ask",version="save-0",trigger="http",status="200",outcome="ok"} 1',
    )
    expect(versionsIn(again, 'sovra_invocations_total', 'ask')).toHaveLength(MAX_VERSIONS_PER_FUNCTION)
  })
})
