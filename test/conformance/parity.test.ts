import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { buildAction } from '../../infra/openwhisk/build.ts'
import { loadConfig } from '../../runtime/config/load.ts'
import { startTestHost, type TestHost } from '../../runtime/testing/index.ts'
import { startActionProxy } from '../support/action-proxy.ts'
import { ROOT, tempProject, withFixtures } from '../helpers.ts'

// The same functions on the embedded host and as OpenWhisk actions driven through the action-proxy protocol
// (POST /init, POST /run) on 127.0.0.1; each case compares status, headers and bodies.
const CONFIG = `
[[functions]]
name = "echo"
main = "${join(ROOT, 'functions/echo/index.ts')}"
routes = ["/echo", "/echo/*"]

[[functions]]
name = "throws"
main = "fixtures/throws.ts"
routes = ["/throws"]

[[functions]]
name = "binary"
main = "fixtures/binary.ts"
routes = ["/binary"]

[[functions]]
name = "plain"
main = "fixtures/plain.js"
routes = ["/plain"]
vars = { GREETING = "parity" }

[[functions]]
name = "sse"
main = "fixtures/sse.ts"
routes = ["/sse"]

[[functions]]
name = "slow"
main = "fixtures/slow.ts"
routes = ["/slow"]
limits = { timeout_ms = 500 }

[[functions]]
name = "big"
main = "fixtures/big.ts"
routes = ["/big"]

[[functions]]
name = "size"
main = "fixtures/size.ts"
routes = ["/size"]
limits = { max_body_bytes = 1024 }
`

type Call = (path: string, init?: RequestInit) => Promise<Response>
let host: TestHost
let dir: string
const proxies: Array<{ close(): Promise<void> }> = []
const actions = new Map<string, { url: string; timeoutMs: number; vars: Record<string, unknown> }>()

/** What the OpenWhisk controller does with a web action's result: `{statusCode, headers, body}` (or the same under `error`). */
function webResponse(result: Record<string, unknown>): Response {
  const r = (result['error'] ?? result) as { statusCode?: number; headers?: Record<string, string | string[]>; body?: string }
  const headers = new Headers()
  for (const [k, v] of Object.entries(r.headers ?? {})) for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one)
  const type = headers.get('content-type') ?? ''
  const text = /^(text\/|application\/json)/.test(type)
  const body = r.body === undefined ? null : text ? r.body : Buffer.from(r.body, 'base64')
  return new Response(body, { status: r.statusCode ?? 200, headers })
}

async function runAction(fn: string, value: Record<string, unknown>): Promise<Record<string, unknown>> {
  const a = actions.get(fn)
  if (a === undefined) throw new Error(`no action ${fn}`)
  const res = await fetch(`${a.url}/run`, {
    method: 'POST',
    body: JSON.stringify({ value: { ...value, __sovra: { vars: a.vars } }, activation_id: `act-${Math.random().toString(16).slice(2)}`, deadline: String(Date.now() + a.timeoutMs), action_name: `/_/sovra/${fn}`, namespace: '_' }),
  })
  expect(res.status).toBe(200)
  return (await res.json()) as Record<string, unknown>
}

const ow = (fn: string): Call => async (path, init = {}) => {
  const url = new URL(path, 'https://ow.example')
  const req = new Request(url, init)
  const body = req.body === null ? undefined : Buffer.from(await req.arrayBuffer()).toString('base64')
  const headers: Record<string, string> = { host: 'ow.example' }
  req.headers.forEach((v, k) => void (headers[k] = v))
  return webResponse(await runAction(fn, { __ow_method: req.method.toLowerCase(), __ow_path: url.pathname, __ow_query: url.search.slice(1), __ow_headers: headers, ...(body === undefined ? {} : { __ow_body: body }) }))
}
const local: Call = (path, init) => host.fetch(path, init)

beforeAll(async () => {
  dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
  const { project } = loadConfig({ configPath: join(dir, 'wrangler-compat.toml'), env: undefined })
  host = await startTestHost({ config: join(dir, 'wrangler-compat.toml') })
  for (const fn of project.functions) {
    const artifact = await buildAction(fn, join(dir, 'dist', 'openwhisk'), dir)
    const proxy = await startActionProxy()
    proxies.push(proxy)
    const init = await fetch(`${proxy.url}/init`, { method: 'POST', body: JSON.stringify({ value: { name: fn.name, main: 'main', code: readFileSync(artifact.path, 'utf8'), binary: false, env: {} } }) })
    expect(await init.json()).toEqual({ OK: true })
    actions.set(fn.name, { url: proxy.url, timeoutMs: fn.limits.timeout_ms, vars: fn.vars })
  }
}, 60_000)
afterAll(async () => {
  await host?.close()
  await Promise.all(proxies.map((p) => p.close()))
})

const both = (fn: string): Array<[string, Call]> => [['embedded', local], ['openwhisk', ow(fn)]]

describe('parity: embedded host vs OpenWhisk action', () => {
  it('echo: method, path, query, headers and body arrive the same', async () => {
    const seen = await Promise.all(both('echo').map(async ([, call]) => {
      const res = await call('/echo/a/b?x=1&x=2&y=%E9%8A%80', { method: 'POST', body: '{"k":"銀行"}', headers: { 'content-type': 'application/json', 'x-test': 'yes' } })
      const j = (await res.json()) as { method: string; path: string; query: unknown; body: string; headers: Record<string, string>; invocation: { function: string; trigger: string; id: string } }
      expect(res.headers.get('x-sovra-invocation-id')).toBe(j.invocation.id)
      return { status: res.status, type: res.headers.get('content-type'), method: j.method, path: j.path, query: j.query, body: j.body, xtest: j.headers['x-test'], fn: j.invocation.function, trigger: j.invocation.trigger }
    }))
    expect(seen[1]).toEqual(seen[0])
    expect(seen[0]).toMatchObject({ status: 200, method: 'POST', path: '/echo/a/b', query: { x: ['1', '2'], y: '銀' }, body: '{"k":"銀行"}', xtest: 'yes', trigger: 'http' })
  })

  it('a handler that throws: the same 500 body, without the internal message', async () => {
    const [a, b] = await Promise.all(both('throws').map(async ([, call]) => call('/throws')))
    expect(a!.status).toBe(500)
    expect(b!.status).toBe(500)
    const [ja, jb] = [(await a!.json()) as { error: Record<string, unknown> }, (await b!.json()) as { error: Record<string, unknown> }]
    expect({ ...jb.error, invocation_id: 'x' }).toEqual({ ...ja.error, invocation_id: 'x' })
    expect(ja.error['code']).toBe('ERR_HANDLER')
    expect(JSON.stringify(jb)).not.toContain('hunter2')
  })

  it('binary bodies both ways, byte for byte', async () => {
    for (const [, call] of both('binary')) {
      const got = new Uint8Array(await (await call('/binary')).arrayBuffer())
      expect([...got]).toEqual(Array.from({ length: 256 }, (_, i) => i))
      const sent = Uint8Array.from([0, 255, 1, 254, 128])
      const back = new Uint8Array(await (await call('/binary', { method: 'POST', body: sent, headers: { 'content-type': 'application/octet-stream' } })).arrayBuffer())
      expect([...back]).toEqual([...sent].reverse())
    }
  })

  it('several Set-Cookie headers, vars, and a plain Workers module', async () => {
    for (const [, call] of both('plain')) {
      const res = await call('/plain')
      expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2'])
      expect(await res.text()).toBe('hello from parity at /plain')
    }
  })

  it('streaming: the same events (buffered into one result on OpenWhisk)', async () => {
    const ticks = await Promise.all(both('sse').map(async ([, call]) => {
      const text = await (await call('/sse?n=4&gap=5')).text()
      return [...text.matchAll(/"tick":(\d+)/g)].map((m) => Number(m[1]))
    }))
    expect(ticks).toEqual([[0, 1, 2, 3], [0, 1, 2, 3]])
  })

  it('timeouts: 504 ERR_TIMEOUT on both, before the platform would kill the container', async () => {
    for (const [, call] of both('slow')) {
      const res = await call('/slow?ms=3000')
      expect(res.status).toBe(504)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_TIMEOUT')
    }
  })

  it('bodies over max_body_bytes: 413 for requests and ERR_RESPONSE_TOO_LARGE for responses, on both', async () => {
    for (const [, call] of both('size')) {
      expect((await call('/size', { method: 'POST', body: 'x'.repeat(2000) })).status).toBe(413)
      expect((await call('/size', { method: 'POST', body: 'x'.repeat(100) })).status).toBe(200)
    }
    for (const [, call] of both('big')) {
      const res = await call('/big?n=2000000')
      expect(res.status).toBe(500)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_RESPONSE_TOO_LARGE')
    }
  })

  it("a result over OpenWhisk's 1 MB limit fails with a clear error instead of being truncated (the embedded host streams it)", async () => {
    expect((await local('/big?n=900000')).status).toBe(200)
    const res = await ow('big')('/big?n=900000')
    expect(res.status).toBe(500)
    const err = ((await res.json()) as { error: { code: string; message: string } }).error
    expect(err.code).toBe('ERR_RESPONSE_TOO_LARGE')
    expect(err.message).toMatch(/over OpenWhisk's result limit of 1048576 bytes/)
  })

  it('crons run scheduled on OpenWhisk, with noRetry reported', async () => {
    expect(await runAction('plain', { __sovra_trigger: 'cron', cron: '0 * * * *' })).toMatchObject({ ok: true })
    expect(await runAction('echo', { __sovra_trigger: 'cron', cron: '0 * * * *' })).toMatchObject({ error: { code: 'ERR_NO_HANDLER', status: 501 } })
  })
})
