import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Principal } from '../../runtime/core/context.ts'
import { HEAVY_HOOK_MS, waitFor } from '../helpers.ts'

/** Calls the host under test: a path of the conformance project (test/conformance/project.ts) and fetch's init. */
export type Call = (path: string, init?: RequestInit) => Promise<Response>

/** What a host does differently by design (README, "Apache OpenWhisk"): each case branches on these, never on names. */
export interface HostCapabilities {
  /** Response bodies reach the caller as they are produced; false: buffered into one result (OpenWhisk). */
  streams: boolean
  /** The platform's limit on one whole result in bytes (OpenWhisk: 1 MB), if it has one. */
  resultLimitBytes?: number
  /** When waitUntil work runs: after the response is sent, or awaited before it (OpenWhisk: no time after a result). */
  waitUntil: 'after-response' | 'before-response'
  /** The host routes paths itself from the config (an unknown path is its 404); false: each action is addressed directly. */
  routes: boolean
}

/** One caller of the principal case and what the function sees (or the refusal). */
export interface PrincipalCase {
  who: string
  call: Call
  /** 200 with `principal` as `ctx.principal` (null: none), or a refusal status with `code`. */
  expect: { status: 200; principal: Principal | null } | { status: number; code: string }
}

/** A started host: how to call it, and what it should answer in the cases that differ by host. */
export interface ConformanceHost {
  call: Call
  principals: PrincipalCase[]
  close(): Promise<void>
}

interface ErrorBody {
  error: { code: string; message: string; invocation_id?: string }
}
const errorOf = async (res: Response): Promise<ErrorBody['error']> => ((await res.json()) as ErrorBody).error
const bytes = async (res: Response): Promise<number[]> => [...new Uint8Array(await res.arrayBuffer())]

/**
 * Registers the conformance suite for one host: every case asserts absolute expectations (status, headers, body),
 * so a host that is wrong alone fails. The host only supplies the way to call it (nitro's `testNitro(ctx, getHandler)`).
 * @param name the describe block's name
 * @param capabilities the host's documented differences
 * @param setup starts the host with the conformance project (runs in beforeAll, HEAVY_HOOK_MS)
 * @example
 * testHost('embedded host', { streams: true, waitUntil: 'after-response', routes: true }, async () => ({ call: ..., principals: [...], close: ... }))
 */
export function testHost(name: string, capabilities: HostCapabilities, setup: () => Promise<ConformanceHost>): void {
  describe(name, () => {
    let host: ConformanceHost | undefined
    beforeAll(async () => void (host = await setup()), HEAVY_HOOK_MS)
    afterAll(async () => host?.close())
    const call: Call = (path, init) => (host as ConformanceHost).call(path, init)

    it('echo: method, path, query, headers and body arrive as sent; the invocation id is the response header', async () => {
      const res = await call('/echo/a/b?x=1&x=2&y=%E9%8A%80', {
        method: 'POST',
        body: '{"k":"銀行"}',
        headers: { 'content-type': 'application/json', 'x-test': 'yes' },
      })
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toMatch(/^application\/json/)
      const j = (await res.json()) as {
        method: string
        path: string
        query: unknown
        body: string | null
        headers: Record<string, string>
        invocation: { id: string; function: string; version: string; trigger: string }
      }
      expect(j).toMatchObject({
        method: 'POST',
        path: '/echo/a/b',
        query: { x: ['1', '2'], y: '銀' },
        body: '{"k":"銀行"}',
        invocation: { function: 'echo', trigger: 'http' },
      })
      expect(j.headers).toMatchObject({ 'x-test': 'yes', 'content-type': 'application/json' })
      // The caller's credentials (the gateway's bearer token) are not passed on to the function.
      expect(j.headers['authorization']).toBeUndefined()
      expect(j.invocation.id).not.toBe('')
      expect(j.invocation.version).not.toBe('')
      expect(res.headers.get('x-sovra-invocation-id')).toBe(j.invocation.id)
      const get = (await (await call('/echo')).json()) as {
        method: string
        path: string
        query: unknown
        body: string | null
      }
      expect(get).toMatchObject({ method: 'GET', path: '/echo', query: {}, body: null })
    })

    it('a handler that throws: 500 ERR_HANDLER with the invocation id, without the internal message or a stack', async () => {
      const res = await call('/throws')
      expect(res.status).toBe(500)
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
      const text = await res.text()
      const id = res.headers.get('x-sovra-invocation-id')
      expect(id).toBeTruthy()
      expect(JSON.parse(text)).toEqual({
        error: {
          code: 'ERR_HANDLER',
          message: 'The function threw an error; see the log line with this invocation id.',
          invocation_id: id,
        },
      })
      expect(text).not.toMatch(/hunter2|secret internal detail|\bat .*\.ts/)
    })

    it('binary bodies both ways, byte for byte', async () => {
      const res = await call('/binary')
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toBe('application/octet-stream')
      expect(res.headers.get('x-kind')).toBe('bytes')
      expect(await bytes(res)).toEqual(Array.from({ length: 256 }, (_, i) => i))
      const sent = Uint8Array.from([0, 255, 1, 254, 128, 0x80, 0xc3, 0x28])
      const back = await call('/binary', {
        method: 'POST',
        body: sent,
        headers: { 'content-type': 'application/octet-stream' },
      })
      expect(back.status).toBe(200)
      expect(await bytes(back)).toEqual([...sent].reverse())
    })

    it('a plain Workers module: several Set-Cookie headers, vars, its own content type', async () => {
      const res = await call('/plain')
      expect(res.status).toBe(200)
      expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2'])
      expect(res.headers.get('content-type')).toBe('text/plain')
      expect(await res.text()).toBe('hello from conformance at /plain')
    })

    it(
      capabilities.streams
        ? 'streaming: Server-Sent Events reach the caller as they are produced'
        : 'streaming: the same events, buffered into one result (no streaming on this host, by design)',
      async () => {
        const res = await call('/sse?n=4&gap=250')
        expect(res.status).toBe(200)
        expect(res.headers.get('content-type')).toBe('text/event-stream')
        expect(res.headers.get('cache-control')).toBe('no-cache')
        const reader = (res.body as ReadableStream<Uint8Array>).getReader()
        const first = await reader.read()
        const firstAt = Date.now()
        let text = new TextDecoder().decode(first.value)
        for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value)
        const events = [...text.matchAll(/^id: (\d+)\ndata: \{"tick":(\d+),"at":(\d+)\}\n\n/gm)].map((m) => ({
          id: Number(m[1]),
          tick: Number(m[2]),
          at: Number(m[3]),
        }))
        expect(events.map((e) => [e.id, e.tick])).toEqual([
          [0, 0],
          [1, 1],
          [2, 2],
          [3, 3],
        ])
        // `at` is when the function produced each event (same clock): streamed, the first event arrives before the
        // last one exists (750 ms later); buffered, nothing arrives before the last one was produced.
        const last = (events.at(-1) as { at: number }).at
        if (capabilities.streams) expect(firstAt).toBeLessThan(last)
        else expect(firstAt).toBeGreaterThanOrEqual(last)
      },
    )

    it('timeouts: 504 ERR_TIMEOUT past limits.timeout_ms (ctx.signal aborts), an answer within it', async () => {
      const res = await call('/slow?ms=3000')
      expect(res.status).toBe(504)
      expect(res.headers.get('x-sovra-invocation-id')).toBeTruthy()
      expect(await errorOf(res)).toMatchObject({ code: 'ERR_TIMEOUT', message: expect.stringContaining('500 ms') })
      const ok = await call('/slow?ms=10')
      expect(ok.status).toBe(200)
      expect(await ok.json()).toEqual({ slept: 10 })
    })

    // A host that routes (embedded, gateway: the one host app, runtime/hosts/app) refuses an oversized upload by its
    // content-length before reading it and closes the connection, so the rest is never drained. (Found by this suite:
    // the gateway used to read up to the limit and keep the connection alive.)
    if (capabilities.routes) {
      it('an upload whose content-length is over max_body_bytes is refused before it is read, and the connection closes', async () => {
        const over = await call('/size', {
          method: 'POST',
          body: 'x'.repeat(200_000),
          headers: { 'content-type': 'text/plain' },
        })
        expect(over.status).toBe(413)
        expect(over.headers.get('connection')).toBe('close')
        expect(await errorOf(over)).toMatchObject({
          code: 'ERR_BODY_TOO_LARGE',
          message: expect.stringContaining('content-length 200000'),
        })
      })
    }

    it('request bodies over max_body_bytes: 413 ERR_BODY_TOO_LARGE; within it the function reads the whole body', async () => {
      const over = await call('/size', { method: 'POST', body: 'x'.repeat(2000) })
      expect(over.status).toBe(413)
      expect(await errorOf(over)).toMatchObject({
        code: 'ERR_BODY_TOO_LARGE',
        message: expect.stringContaining('1024 bytes'),
      })
      const ok = await call('/size', { method: 'POST', body: 'x'.repeat(100) })
      expect(ok.status).toBe(200)
      expect(await ok.json()).toEqual({ bytes: 100, text: 'x'.repeat(64) })
    })

    it('responses over max_body_bytes: 500 ERR_RESPONSE_TOO_LARGE, never a truncated body', async () => {
      const res = await call('/big?n=2000000')
      expect(res.status).toBe(500)
      expect(await errorOf(res)).toMatchObject({
        code: 'ERR_RESPONSE_TOO_LARGE',
        message: expect.stringMatching(/over (limits\.max_body_bytes|OpenWhisk's result limit)/),
      })
    })

    const limit = capabilities.resultLimitBytes
    it(
      limit === undefined
        ? 'a 900 000-byte response under max_body_bytes is served whole (no platform result limit)'
        : `a result over the platform's ${limit}-byte limit fails with ERR_RESPONSE_TOO_LARGE naming it, instead of being truncated`,
      async () => {
        const res = await call('/big?n=900000')
        if (limit === undefined) {
          expect(res.status).toBe(200)
          const body = new Uint8Array(await res.arrayBuffer())
          expect(body.byteLength).toBe(900_000)
          expect(body.every((b) => b === 97)).toBe(true)
          return
        }
        expect(res.status).toBe(500)
        const err = await errorOf(res)
        expect(err.code).toBe('ERR_RESPONSE_TOO_LARGE')
        expect(err.message).toContain(`over OpenWhisk's result limit of ${limit} bytes`)
      },
    )

    it(`waitUntil: the answer is 202 at once, the background work runs ${capabilities.waitUntil === 'after-response' ? 'after it' : 'to the end before it (by design on this host)'}, a rejection fails nothing`, async () => {
      type Status = { started: number; done: number; failed: number; held: number }
      const status = async (): Promise<Status> => (await (await call('/background/status')).json()) as Status
      const before = await status()
      if (capabilities.waitUntil === 'after-response') {
        // Held until a later request releases it: the 202 can only have been sent before the work finished.
        const res = await call('/background?hold', { method: 'POST' })
        expect(res.status).toBe(202)
        expect(await res.text()).toBe('accepted')
        expect(await status()).toMatchObject({ started: before.started + 1, done: before.done, held: 1 })
        expect(await (await call('/background/release', { method: 'POST' })).json()).toEqual({ released: 1 })
        await waitFor(async () => (await status()).done === before.done + 1)
      } else {
        const res = await call('/background?ms=100', { method: 'POST' })
        expect(res.status).toBe(202)
        expect(await res.text()).toBe('accepted')
        // Awaited before the result: done by the time the caller has the answer.
        expect(await status()).toMatchObject({ started: before.started + 1, done: before.done + 1, held: 0 })
      }
      const failing = await call('/background?ms=10&fail', { method: 'POST' })
      expect(failing.status).toBe(202)
      expect(await failing.text()).toBe('accepted')
      await waitFor(async () => (await status()).failed === before.failed + 1)
      expect((await call('/background/status')).status).toBe(200)
    })

    it('ctx.principal: the caller as this host establishes it (a per-host expectation)', async () => {
      const cases = (host as ConformanceHost).principals
      expect(cases.length).toBeGreaterThan(0)
      for (const c of cases) {
        const res = await c.call('/whoami')
        expect(res.status, c.who).toBe(c.expect.status)
        const j = (await res.json()) as {
          principal?: Principal | null
          path?: string
          invocation?: { function: string; trigger: string }
          error?: { code: string }
        }
        if ('code' in c.expect) {
          // Refused before the function runs.
          expect(j.error?.code, c.who).toBe(c.expect.code)
          continue
        }
        expect(j, c.who).toMatchObject({ path: '/whoami', invocation: { function: 'whoami', trigger: 'http' } })
        // Exactly this principal: no extra fields (e.g. `anonymous` on a verified caller), none missing.
        expect(j.principal, c.who).toEqual(c.expect.principal)
      }
    })

    it.runIf(capabilities.routes)('a path no function serves: 404 ERR_NOT_FOUND', async () => {
      const res = await call('/nothing/here')
      expect(res.status).toBe(404)
      expect((await errorOf(res)).code).toBe('ERR_NOT_FOUND')
    })
  })
}
