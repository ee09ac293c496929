import { createServer, type Server } from 'node:http'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { IsolateRequest, LightRequest } from '../../../runtime/isolate/light-request.ts'
import { bundleFunction } from '../../../runtime/isolate/bundle.ts'
import { IsolatePool } from '../../../runtime/isolate/pool.ts'
import { FIXTURES } from '../../helpers.ts'

const light = (
  method: string,
  body: string | null,
  headers: string[] = ['content-type', 'application/json', 'x-a', '1'],
) =>
  new LightRequest(
    method,
    'http://local/p?q=1',
    headers,
    body === null ? null : new TextEncoder().encode(body),
  ) as unknown as Request

describe('LightRequest (the request a function receives)', () => {
  it('answers method, url, headers and the body like a native Request', async () => {
    const r = light('POST', '{"a":1}')
    expect(r.method).toBe('POST')
    expect(r.url).toBe('http://local/p?q=1')
    expect(r.headers.get('X-A')).toBe('1')
    expect(r.bodyUsed).toBe(false)
    expect(await r.json()).toEqual({ a: 1 })
    expect(r.bodyUsed).toBe(true)
    await expect(r.text()).rejects.toThrowError(/Body is unusable/)
    expect(() => r.clone()).toThrowError(TypeError)
  })

  it('reads bodies as text, bytes and ArrayBuffer, and an empty body as empty', async () => {
    expect(new Uint8Array(await light('PUT', 'xyz').arrayBuffer())).toEqual(new Uint8Array([120, 121, 122]))
    expect(await light('GET', null).text()).toBe('')
  })

  it('is an instance of Request and builds the real one for everything else', async () => {
    const r = light('POST', 'hello')
    expect(r instanceof Request).toBe(true)
    expect(r.cache).toBe('default')
    expect(r.redirect).toBe('follow')
    const copy = r.clone()
    expect(await copy.text()).toBe('hello')
    expect(await r.text()).toBe('hello')
  })

  it('keeps header changes made before the real Request is built', async () => {
    const r = light('POST', 'b')
    r.headers.set('x-added', 'yes')
    const rebuilt = new IsolateRequest(r)
    expect(rebuilt.headers.get('x-added')).toBe('yes')
    expect(rebuilt.method).toBe('POST')
    expect(await rebuilt.text()).toBe('b')
  })
})

describe('fetch inside an isolate', () => {
  let upstream: Server
  let port = 0
  let pool: IsolatePool
  beforeAll(async () => {
    upstream = createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => res.end(`${req.method} ${req.headers['x-k']} ${body}`))
    })
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()))
    port = (upstream.address() as { port: number }).port
    const bundle = await bundleFunction(
      { name: 'forward', main: join(FIXTURES, 'forward.ts') },
      mkdtempSync(join(tmpdir(), 'sovra-lr-')),
    )
    pool = new IsolatePool({
      name: 'forward',
      bundle,
      env: { vars: {}, secrets: {} },
      limits: { timeout_ms: 5000, memory_mb: 64, max_body_bytes: 1 << 20 },
      isolates: { min: 1, max: 1, concurrency: 4, queue: 4 },
    })
    await pool.start()
  })
  afterAll(async () => {
    await pool.close(0)
    upstream.close()
  })

  it('accepts the received request in fetch(request) and new Request(request)', async () => {
    for (const query of ['', '?wrap']) {
      const res = await pool.fetch(
        new Request(`http://127.0.0.1:${port}/up${query}`, {
          method: 'POST',
          body: 'payload',
          headers: { 'x-k': 'v' },
        }),
      )
      expect(await res.text()).toBe('200 POST v payload')
      expect(res.headers.get('x-is-request')).toBe('true')
    }
  })
})
