import { describe, expect, it } from 'vitest'
import { Histogram, Registry } from 'prom-client'
import { BoundHistogram } from '../../../infra/observe/bound-histogram.ts'
import { createPromMetrics } from '../../../infra/observe/metrics.ts'
import type { InvocationRecord } from '../../../runtime/isolate/pool.ts'

const CONFIG = {
  name: 'x_seconds',
  help: 'a histogram',
  labelNames: ['function', 'status'] as const,
  buckets: [0.001, 0.01, 0.1, 1],
}

describe('BoundHistogram', () => {
  it('renders bound series exactly as prom-client renders its own, in both formats', async () => {
    for (const contentType of [Registry.PROMETHEUS_CONTENT_TYPE, Registry.OPENMETRICS_CONTENT_TYPE] as const) {
      const plain = new Registry<typeof contentType>()
      const bound = new Registry<typeof contentType>()
      plain.setContentType(contentType)
      bound.setContentType(contentType)
      const reference = new Histogram({ ...CONFIG, registers: [plain] })
      const fast = new BoundHistogram({ ...CONFIG, registers: [bound] })
      const echo = fast.bind({ function: 'echo', status: '200' })
      const boom = fast.bind({ function: 'boom', status: '500' })
      fast.bind({ function: 'never', status: '200' })
      for (const v of [0.0005, 0.002, 0.5, 3, 0.01]) {
        reference.observe({ function: 'echo', status: '200' }, v)
        echo.observe(v)
      }
      reference.observe({ function: 'boom', status: '500' }, 0.05)
      boom.observe(0.05)
      expect(await bound.metrics()).toBe(await plain.metrics())
      expect(await fast.get()).toEqual(await reference.get())
    }
  })

  it('starts from zero after reset and keeps the bound series usable', async () => {
    const fast = new BoundHistogram({ ...CONFIG, registers: [] })
    const echo = fast.bind({ function: 'echo', status: '200' })
    echo.observe(0.5)
    fast.reset()
    expect((await fast.get()).values).toEqual([])
    echo.observe(0.5)
    expect((await fast.get()).values.find((v) => v.metricName === 'x_seconds_count')?.value).toBe(1)
  })
})

describe('createPromMetrics', () => {
  it('counts invocations and their latency under the same names and labels', async () => {
    const metrics = createPromMetrics()
    const record = (status: number, outcome: InvocationRecord['outcome']): InvocationRecord => ({
      invocation: { id: 'i', function: 'echo', version: 'v1', trigger: 'http' },
      status,
      outcome,
      durationMs: 3,
      queuedMs: 0,
      error: undefined,
      waitUntilErrors: [],
      fields: undefined,
    })
    metrics.onInvocation(record(200, 'ok'))
    metrics.onInvocation(record(200, 'ok'))
    metrics.onInvocation(record(500, 'error'))
    const { body } = await metrics.render()
    expect(body).toContain(
      'sovra_invocations_total{function="echo",version="v1",trigger="http",status="200",outcome="ok"} 2',
    )
    expect(body).toContain(
      'sovra_invocations_total{function="echo",version="v1",trigger="http",status="500",outcome="error"} 1',
    )
    expect(body).toContain(
      'sovra_invocation_duration_seconds_bucket{le="0.005",function="echo",version="v1",trigger="http",status="200"} 2',
    )
    expect(body).toContain(
      'sovra_invocation_duration_seconds_count{function="echo",version="v1",trigger="http",status="500"} 1',
    )
    expect(body).toContain('sovra_invocation_queue_seconds_count{function="echo",version="v1"} 3')
    // A second scrape adds nothing twice.
    metrics.onInvocation(record(200, 'ok'))
    expect((await metrics.render()).body).toContain(
      'sovra_invocations_total{function="echo",version="v1",trigger="http",status="200",outcome="ok"} 3',
    )
  })
})
