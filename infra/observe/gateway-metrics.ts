import { Counter, Histogram, Registry } from 'prom-client'

import type { GatewayMetrics } from '../../runtime/hosts/gateway/gateway.ts'

/**
 * The gateway's Prometheus metrics: `sovra_gateway_requests_total{function,status}` (refused callers included) and
 * `sovra_gateway_request_seconds{function}` (latency including the blocking invoke).
 * @param registry where they register (default: a registry of their own)
 */
export function createGatewayMetrics(registry: Registry = new Registry()): GatewayMetrics {
  const requests = new Counter({
    name: 'sovra_gateway_requests_total',
    help: 'Requests by function and status',
    labelNames: ['function', 'status'] as const,
    registers: [registry],
  })
  const duration = new Histogram({
    name: 'sovra_gateway_request_seconds',
    help: 'Gateway latency including the blocking invoke',
    labelNames: ['function'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  })
  return {
    onRequest(fn, status, seconds) {
      requests.inc({ function: fn, status: String(status) })
      duration.observe({ function: fn }, seconds)
    },
    render: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  }
}
