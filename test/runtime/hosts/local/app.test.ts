import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../../../runtime/config/load.ts'
import { createLocalApp } from '../../../../runtime/hosts/local/app.ts'
import { FunctionSet } from '../../../../runtime/hosts/local/functions.ts'
import { invocationLogger } from '../../../../runtime/hosts/local/observer.ts'
import { createPromMetrics } from '../../../../infra/observe/metrics.ts'
import { captureLogger, tempProject, waitFor, withFixtures } from '../../../helpers.ts'

const CONFIG = `
name = "apptest"
[limits]
max_body_bytes = 1000
timeout_ms = 3000

[[functions]]
name = "echo"
main = "echo.ts"
routes = ["/v1/echo", "/v1/items/*"]

[[functions]]
name = "special"
main = "fixtures/plain.js"
routes = ["/v1/items/special"]
tier = "confidential"
[functions.vars]
GREETING = "special"

[[functions]]
name = "throws"
main = "fixtures/throws.ts"
routes = ["/boom"]

[[functions]]
name = "size"
main = "fixtures/size.ts"
routes = ["/size"]
`

describe('local host app (in memory)', () => {
  const log = captureLogger()
  const metrics = createPromMetrics()
  const logLine = invocationLogger(log)
  let functions: FunctionSet
  let app: ReturnType<typeof createLocalApp>

  beforeAll(async () => {
    const dir = withFixtures(
      tempProject({
        'wrangler-compat.toml': CONFIG,
        'echo.ts':
          "export { default } from '" +
          new URL('../../../../functions/echo/index.ts', import.meta.url).pathname +
          "'\n",
      }),
    )
    const { project } = loadConfig({ cwd: dir, processEnv: {} })
    functions = await FunctionSet.load(project, {
      observer: { onInvocation: (r) => (metrics.onInvocation(r), logLine(r)), onIsolate: (e) => metrics.onIsolate(e) },
    })
    metrics.setStats(() => functions.stats())
    app = createLocalApp({ project, functions, log, metrics })
  })
  afterAll(() => functions.close(0))

  it('routes any method to the function and hands it method, path, query, headers and body', async () => {
    const res = await app.request('/v1/echo?a=1&a=2&b=x', {
      method: 'PUT',
      body: 'payload',
      headers: { 'x-trace': 't1' },
    })
    expect(res.status).toBe(200)
    const body = await res.json()
    expect(body).toMatchObject({
      method: 'PUT',
      path: '/v1/echo',
      query: { a: ['1', '2'], b: 'x' },
      body: 'payload',
      headers: { 'x-trace': 't1' },
    })
    expect(body.invocation).toMatchObject({
      function: 'echo',
      trigger: 'http',
      id: res.headers.get('x-sovra-invocation-id'),
    })
  })

  it('lets the most specific route win', async () => {
    expect(await (await app.request('/v1/items/special')).text()).toBe('hello from special at /v1/items/special')
    expect((await (await app.request('/v1/items/7', { method: 'DELETE' })).json()).method).toBe('DELETE')
  })

  it('answers 404 JSON for an unknown route and an unknown admin path', async () => {
    const res = await app.request('/nowhere')
    expect(res.status).toBe(404)
    expect(await res.json()).toEqual({
      error: { code: 'ERR_NOT_FOUND', message: 'No function route matches /nowhere' },
    })
    const admin = await app.request('/_sovra/secrets')
    expect(admin.status).toBe(404)
    expect((await admin.json()).error.message).toMatch(/valid: GET \/_sovra\/health/)
  })

  it('answers 413 for a body over the limit, by content-length and by counting, without running the function', async () => {
    // Invocation lines only: a refused request has its own line ("request refused"), with no invocation behind it.
    const invocations = () => log.lines.filter((l) => l['function'] === 'echo' && l.msg.startsWith('invocation'))
    const before = invocations().length
    const declared = await app.request('/v1/echo', {
      method: 'POST',
      body: 'x'.repeat(1001),
      headers: { 'content-length': '1001' },
    })
    expect(declared.status).toBe(413)
    expect((await declared.json()).error).toMatchObject({
      code: 'ERR_BODY_TOO_LARGE',
      message: expect.stringMatching(/max_body_bytes of function "echo" \(1000 bytes\); received content-length 1001/),
    })
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new Uint8Array(600))
        c.enqueue(new Uint8Array(600))
        c.close()
      },
    })
    const counted = await app.request('/v1/echo', { method: 'POST', body: stream, duplex: 'half' } as RequestInit)
    expect(counted.status).toBe(413)
    expect((await counted.json()).error.message).toMatch(/received more than 1000 bytes/)
    // Then one the function serves. Once its line is written and the pool has nothing in flight or queued, an
    // invocation the refused requests had started would have been logged too (the pool logs each as it finishes).
    const ok = await app.request('/v1/echo', { method: 'POST', body: 'x'.repeat(100) })
    expect(ok.status).toBe(200)
    const served = ok.headers.get('x-sovra-invocation-id')
    await waitFor(() => {
      const stats = functions.get('echo')?.pool.stats()
      return stats?.inflight === 0 && stats.queued === 0 && log.lines.some((l) => l['invocation_id'] === served)
    })
    expect(invocations().slice(before)).toEqual([expect.objectContaining({ invocation_id: served, status: 200 })])
  })

  it('accepts a body of exactly max_body_bytes and keeps multi-byte text intact', async () => {
    const exact = await app.request('/size', { method: 'POST', body: 'x'.repeat(1000) })
    expect(await exact.json()).toEqual({ bytes: 1000, text: 'x'.repeat(64) })
    const japanese = '就業規則第十二条：機密情報の取扱い'
    const res = await app.request('/size', {
      method: 'POST',
      body: japanese,
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    })
    expect(await res.json()).toEqual({ bytes: new TextEncoder().encode(japanese).byteLength, text: japanese })
    const echoed = await app.request(`/v1/echo?q=${encodeURIComponent('稟議')}`)
    expect((await echoed.json()).query).toEqual({ q: '稟議' })
  })

  it('gives a throwing function a 500 with the invocation id, and logs the real error', async () => {
    const res = await app.request('/boom')
    expect(res.status).toBe(500)
    const id = res.headers.get('x-sovra-invocation-id')
    expect((await res.json()).error.invocation_id).toBe(id)
    const line = await waitFor(() => log.lines.find((l) => l['invocation_id'] === id))
    expect(line).toMatchObject({
      level: 'error',
      function: 'throws',
      trigger: 'http',
      status: 500,
      outcome: 'error',
      method: 'GET',
      path: '/boom',
      duration_ms: expect.any(Number),
    })
    expect(JSON.stringify(line)).toContain('hunter2')
  })

  it('writes one structured log line per invocation', async () => {
    const res = await app.request('/v1/echo?log=1')
    const id = res.headers.get('x-sovra-invocation-id')
    await res.text()
    const line = await waitFor(() => log.lines.find((l) => l['invocation_id'] === id))
    expect(line).toMatchObject({
      level: 'info',
      msg: 'invocation',
      function: 'echo',
      version: expect.stringMatching(/^[0-9a-f]{12}$/),
      trigger: 'http',
      status: 200,
      outcome: 'ok',
    })
  })

  it('reports health once warm minimums are ready', async () => {
    const res = await app.request('/_sovra/health')
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({
      status: 'ok',
      functions: { echo: 'ready', special: 'ready', throws: 'ready', size: 'ready' },
    })
  })

  it('lists functions with routes, tier, limits and the bundle sha256', async () => {
    const list = await (await app.request('/_sovra/functions')).json()
    const special = list.find((f: { name: string }) => f.name === 'special')
    expect(special).toMatchObject({
      routes: ['/v1/items/special'],
      tier: 'confidential',
      limits: { timeout_ms: 3000, memory_mb: 256, max_body_bytes: 1000 },
      vars: ['GREETING'],
      bundle: { sha256: expect.stringMatching(/^[0-9a-f]{64}$/), bytes: expect.any(Number) },
    })
  })

  it('exposes Prometheus metrics: invocation counts and a latency histogram by status', async () => {
    await app.request('/boom')
    const res = await app.request('/_sovra/metrics')
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
    const text = await res.text()
    expect(text).toMatch(
      /sovra_invocations_total\{function="throws",version="[0-9a-f]{12}",trigger="http",status="500",outcome="error"\} [1-9]/,
    )
    expect(text).toMatch(
      /sovra_invocation_duration_seconds_bucket\{le="[0-9.]+",function="echo",version="[0-9a-f]{12}",trigger="http",status="200"\} [1-9]/,
    )
    expect(text).toMatch(/sovra_isolates_ready\{function="echo"\} 1/)
    expect(text).toMatch(/sovra_isolate_start_seconds_count\{function="echo"\} [1-9]/)
  })
})
