import { describe, expect, it } from 'vitest'

import { createPromMetrics } from '../../../infra/observe/metrics.ts'

describe('host metrics', () => {
  it('name process metrics sovra_process_* (not sovra_process_process_*)', async () => {
    const { body } = await createPromMetrics().render()
    expect(body).toMatch(/^sovra_process_cpu_seconds_total /m)
    expect(body).toMatch(/^sovra_nodejs_heap_size_used_bytes /m)
    expect(body).not.toMatch(/process_process/)
  })
})
