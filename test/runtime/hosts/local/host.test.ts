import { spawn } from 'node:child_process'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../../../runtime/config/load.ts'
import { LocalHost } from '../../../../runtime/hosts/local/host.ts'
import { createPromMetrics } from '../../../../infra/observe/metrics.ts'
import { captureLogger, ROOT, tempProject, waitFor, withFixtures } from '../../../helpers.ts'

const CONFIG = `
[limits]
max_body_bytes = 2000
[[functions]]
name = "sse"
main = "fixtures/sse.ts"
routes = ["/sse"]
[[functions]]
name = "slow"
main = "fixtures/slow.ts"
routes = ["/slow"]
[functions.isolates]
min = 1
max = 4
# One invocation per isolate (not the default 64), so concurrent calls need several isolates.
concurrency = 1
`

describe('embedded host over HTTP', () => {
  const log = captureLogger()
  let host: LocalHost
  let dir: string

  beforeAll(async () => {
    dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
    const { project } = loadConfig({ cwd: dir, processEnv: {} })
    host = await LocalHost.start({ project, log, metrics: createPromMetrics(), port: 0 })
  })
  afterAll(() => host.close(1000))

  it('listens on 127.0.0.1 by default', () => {
    expect(host.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
  })

  it('streams Server-Sent Events to an HTTP client as they are produced', async () => {
    const res = await fetch(`${host.url}/sse?n=3&gap=400`)
    expect(res.headers.get('content-type')).toBe('text/event-stream')
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    const first = await reader.read()
    const firstAt = Date.now()
    expect(new TextDecoder().decode(first.value)).toMatch(/^id: 0\ndata: \{"tick":0,"at":\d+\}\n\n$/)
    let rest = ''
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      rest += new TextDecoder().decode(value)
    }
    const later = [...rest.matchAll(/data: (\{.*\})/g)].map(
      (m) => JSON.parse(m[1] as string) as { tick: number; at: number },
    )
    expect(later.map((e) => e.tick)).toEqual([1, 2])
    // The first event reached the client before the last one was even produced: nothing was buffered on the way.
    expect(firstAt).toBeLessThan(later[1]!.at)
  })

  it('cancels the invocation when the client goes away mid-stream', async () => {
    const controller = new AbortController()
    const res = await fetch(`${host.url}/sse?n=1000&gap=20`, { signal: controller.signal })
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    await reader.read()
    controller.abort()
    const line = await waitFor(
      () => log.lines.find((l) => l['function'] === 'sse' && l['outcome'] === 'cancelled'),
      5000,
    )
    expect(line?.['duration_ms']).toBeLessThan(5000)
    await waitFor(() => host.functions.get('sse')?.pool.stats().inflight === 0)
  })

  it('answers 413 to a chunked body over the limit and closes the connection', async () => {
    const { status, headers, body } = await new Promise<{
      status: number
      headers: Record<string, unknown>
      body: string
    }>((resolve, reject) => {
      const req = httpRequest(
        `${host.url}/slow`,
        { method: 'POST', headers: { 'transfer-encoding': 'chunked' } },
        (res) => {
          let text = ''
          res.on('data', (c: Buffer) => (text += c.toString()))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
        },
      )
      req.on('error', reject)
      req.write('x'.repeat(1500))
      req.end('y'.repeat(1500))
    })
    expect(status).toBe(413)
    expect(headers['connection']).toBe('close')
    const { error } = JSON.parse(body) as { error: { code: string; invocation_id: string } }
    expect(error.code).toBe('ERR_BODY_TOO_LARGE')
    // The same id as every other error: in the header, the body and the log line.
    expect(error.invocation_id).toMatch(/^[0-9a-f-]{36}$/)
    expect(headers['x-sovra-invocation-id']).toBe(error.invocation_id)
    expect(log.lines.find((l) => l['invocation_id'] === error.invocation_id)).toMatchObject({
      level: 'warn',
      msg: 'request refused',
      function: 'slow',
      error: { code: 'ERR_BODY_TOO_LARGE' },
    })
  })

  it('serves concurrent requests on several isolates', async () => {
    const t0 = Date.now()
    const all = await Promise.all([1, 2, 3, 4].map(() => fetch(`${host.url}/slow?ms=600`)))
    expect(all.map((r) => r.status)).toEqual([200, 200, 200, 200])
    // Four 600 ms calls on up to four isolates overlap instead of taking 2.4 s in a row.
    expect(Date.now() - t0).toBeLessThan(2000)
    expect(host.functions.get('slow')?.pool.stats().isolates).toBeGreaterThan(1)
  })
})

/** Starts `sovra start` on a fixture project; resolves once it serves. */
async function startProcess() {
  const dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin/sovra.js'), 'start', '--config', join(dir, 'wrangler-compat.toml'), '--port', '0'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SOVRA_LOG_LEVEL: 'info' } },
  )
  const out = { stdout: '', stderr: '' }
  child.stderr.on('data', (c: Buffer) => (out.stderr += c.toString()))
  child.stdout.on('data', (c: Buffer) => (out.stdout += c.toString()))
  const exited = new Promise<{ code: number | null }>((resolve) => child.on('exit', (code) => resolve({ code })))
  const url = String(await waitFor(() => /on (http:\/\/127\.0\.0\.1:\d+)/.exec(out.stderr)?.[1], 30_000))
  // Every complete stdout line is one JSON log line: nothing else is written there (JSON.parse throws otherwise).
  const lines = () =>
    out.stdout
      .slice(0, out.stdout.lastIndexOf('\n') + 1)
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
  return { child, url, exited, lines, out }
}

/** Waits until the function has an invocation in flight (its pool stats, through the admin API). */
async function running(url: string, fn: string): Promise<void> {
  await waitFor(async () => {
    const fns = (await (await fetch(`${url}/_sovra/functions`)).json()) as Array<{
      name: string
      stats: { inflight: number }
    }>
    return (fns.find((f) => f.name === fn)?.stats.inflight ?? 0) > 0
  }, 10_000)
}

describe('sovra start (process)', () => {
  it('on SIGTERM drains: health says stopping, new requests get 503, a second SIGTERM keeps draining, exit 0', async () => {
    const { child, url, exited, lines } = await startProcess()
    const inflight = fetch(`${url}/slow?ms=2500`)
    await running(url, 'slow')
    child.kill('SIGTERM')
    await waitFor(() => lines().some((l) => l['msg'] === 'shutdown requested'), 5000)
    const health = await fetch(`${url}/_sovra/health`)
    expect(health.status).toBe(503)
    expect(await health.json()).toMatchObject({ status: 'stopping' })
    const refused = await fetch(`${url}/slow?ms=1`)
    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).toBe('1')
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('ERR_SHUTTING_DOWN')
    child.kill('SIGTERM')
    await waitFor(() => lines().some((l) => String(l['msg']).startsWith('shutdown already in progress')), 5000)
    const res = await inflight
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ slept: 2500 })
    expect((await exited).code).toBe(0)
    expect(lines().map((l) => l['msg'])).toEqual(
      expect.arrayContaining(['sovra listening', 'shutdown requested', 'invocation', 'sovra stopped']),
    )
    expect(lines().find((l) => String(l['msg']).startsWith('shutdown already in progress'))).toMatchObject({
      level: 'warn',
      signal: 'SIGTERM',
      signals: 2,
    })
    expect(lines().find((l) => l['msg'] === 'invocation' && l['path'] === '/slow')).toMatchObject({
      function: 'slow',
      status: 200,
      trigger: 'http',
    })
  }, 60_000)

  it('exits at once with 130 on a second SIGINT, without waiting for in-flight requests', async () => {
    const { child, url, exited, lines } = await startProcess()
    const inflight = fetch(`${url}/slow?ms=20000`).catch((e: unknown) => e)
    await running(url, 'slow')
    child.kill('SIGINT')
    await waitFor(() => lines().some((l) => l['msg'] === 'shutdown requested'), 5000)
    child.kill('SIGINT')
    // 130, not the 0 of a drained shutdown; the request was cut off, not answered.
    expect((await exited).code).toBe(130)
    expect(await inflight).toBeInstanceOf(Error)
    expect(lines().find((l) => String(l['msg']).startsWith('shutdown forced'))).toMatchObject({
      level: 'error',
      signal: 'SIGINT',
    })
  }, 60_000)
})
