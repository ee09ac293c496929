import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { bundleFunction } from '../../../runtime/isolate/bundle.ts'
import { SpareIsolates } from '../../../runtime/isolate/spares.ts'
import {
  IsolatePool,
  type InvocationRecord,
  type IsolateEvent,
  type PoolOptions,
} from '../../../runtime/isolate/pool.ts'
import { FIXTURES, ROOT, waitFor } from '../../helpers.ts'

const OUT = mkdtempSync(join(tmpdir(), 'sovra-pool-'))
const pools: IsolatePool[] = []
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close(0)))
})

async function pool(
  file: string,
  overrides: { limits?: Partial<PoolOptions['limits']>; isolates?: Partial<PoolOptions['isolates']> } = {},
) {
  const records: InvocationRecord[] = []
  const events: IsolateEvent[] = []
  const name = file.replace(/\W.*$/, '')
  const bundle = await bundleFunction({ name, main: join(FIXTURES, file) }, OUT)
  const p = new IsolatePool({
    name,
    bundle,
    env: { vars: { GREETING: 'tests' }, secrets: {} },
    limits: { timeout_ms: 2000, memory_mb: 64, max_body_bytes: 1024 * 1024, ...overrides.limits },
    isolates: { min: 1, max: 2, concurrency: 1, queue: 16, ...overrides.isolates },
    observer: { onInvocation: (r) => void records.push(r), onIsolate: (e) => void events.push(e) },
  })
  pools.push(p)
  await p.start()
  return { pool: p, records, events }
}

const req = (path: string, init?: RequestInit) => new Request(`http://local${path}`, init)

describe('IsolatePool', () => {
  it('runs a plain Workers module that imports nothing from sovra, with env and repeated headers', async () => {
    const { pool: p } = await pool('plain.js')
    const res = await p.fetch(req('/hi'))
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('hello from tests at /hi')
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2'])
    expect(res.headers.get('x-sovra-invocation-id')).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('runs each isolate in a worker thread with its own globals, seen neither by the host nor by other isolates', async () => {
    const { pool: p } = await pool('globals.ts', { isolates: { min: 2, max: 2 } })
    const host = globalThis as Record<string, unknown>
    host['__hostOnly'] = 1
    type Probe = { before: string | null; after: string | null; hostOnly: string }
    const probe = async (query: string): Promise<Probe> => (await (await p.fetch(req(`/?${query}`))).json()) as Probe
    try {
      // Two overlapping invocations, one per isolate (concurrency 1), set the same global to different values.
      const [a, b] = await Promise.all([probe('set=a&ms=300'), probe('set=b&ms=300')])
      expect(p.stats()).toMatchObject({ isolates: 2, ready: 2 })
      expect([a, b]).toEqual([
        { before: null, after: 'a', hostOnly: 'undefined' },
        { before: null, after: 'b', hostOnly: 'undefined' },
      ])
      // Each isolate kept its own value (a global lives as long as its isolate, as in Workers): the probe reads it.
      const [c, d] = await Promise.all([probe('ms=300'), probe('ms=300')])
      expect([c.before, d.before].sort()).toEqual(['a', 'b'])
      expect(host['__sovraProbe']).toBeUndefined()
    } finally {
      delete host['__hostOnly']
    }
  })

  it('turns a throwing handler into a 500 JSON error with the invocation id and no stack or message', async () => {
    const { pool: p, records } = await pool('throws.ts')
    const res = await p.fetch(req('/'), { invocationId: 'inv-throws' })
    expect(res.status).toBe(500)
    const body = await res.json()
    expect(body).toEqual({ error: { code: 'ERR_HANDLER', message: expect.any(String), invocation_id: 'inv-throws' } })
    expect(JSON.stringify(body)).not.toMatch(/hunter2|at fetch|\.ts:/)
    // The log record keeps what the caller must not see.
    await waitFor(() => records.length === 1)
    expect(records.at(-1)).toMatchObject({
      status: 500,
      outcome: 'error',
      error: { message: expect.stringContaining('hunter2'), stack: expect.any(String) },
    })
  })

  it('terminates an infinite loop at its timeout with 504, replaces the isolate, and serves the next request', async () => {
    const { pool: p, records, events } = await pool('loop.ts', { limits: { timeout_ms: 300 } })
    const started = Date.now()
    const res = await p.fetch(req('/'))
    expect(res.status).toBe(504)
    expect((await res.json()).error).toMatchObject({
      code: 'ERR_TIMEOUT',
      message: expect.stringContaining('limits.timeout_ms (300 ms)'),
    })
    expect(Date.now() - started).toBeLessThan(2000)
    // The stuck isolate is terminated and replaced; a later request is served.
    await waitFor(() => events.some((e) => e.event === 'exit'))
    await waitFor(() => p.stats().ready >= 1 && p.stats().inflight === 0)
    const next = await p.fetch(req('/?ok'))
    expect(await next.text()).toBe('still alive')
    expect(events.filter((e) => e.event === 'exit').map((e) => e.reason)).toEqual(['timeout'])
    expect(records.map((r) => r.outcome).sort()).toEqual(['ok', 'timeout'])
    expect(p.stats().restarts).toBe(1)
  })

  it('replaces an isolate that runs out of memory (503 for that request) and keeps serving', async () => {
    const { pool: p, records } = await pool('oom.ts', { limits: { memory_mb: 32, timeout_ms: 10_000 } })
    const res = await p.fetch(req('/'))
    expect(res.status).toBe(503)
    expect((await res.json()).error).toMatchObject({
      code: 'ERR_ISOLATE_LOST',
      message: expect.stringContaining('ran out of memory (limits.memory_mb = 32)'),
    })
    await waitFor(() => records.length === 1)
    expect(records.at(-1)?.outcome).toBe('oom')
    expect(await (await p.fetch(req('/?ok'))).text()).toBe('fine')
  })

  it('keeps other functions running while one loops', async () => {
    const { pool: looping } = await pool('loop.ts', { limits: { timeout_ms: 1500 } })
    const { pool: plain } = await pool('plain.js')
    const stuck = looping.fetch(req('/'))
    const t0 = Date.now()
    const res = await plain.fetch(req('/meanwhile'))
    expect(await res.text()).toBe('hello from tests at /meanwhile')
    expect(Date.now() - t0).toBeLessThan(1000)
    expect((await stuck).status).toBe(504)
  })

  it('streams a response across the thread boundary as it is produced (SSE)', async () => {
    const { pool: p } = await pool('sse.ts')
    const res = await p.fetch(req('/?n=3&gap=400'))
    expect(res.headers.get('content-type')).toBe('text/event-stream')
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    const arrivals: number[] = []
    let text = ''
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      arrivals.push(Date.now())
      text += new TextDecoder().decode(value)
    }
    const events = [...text.matchAll(/id: (\d)\ndata: (\{.*\})\n\n/g)].map(
      (m) => JSON.parse(m[2] as string) as { tick: number; at: number },
    )
    expect(events.map((e) => e.tick)).toEqual([0, 1, 2])
    // The first event reached the reader before the last one was even produced: nothing was buffered.
    expect(arrivals[0]).toBeLessThan(events[2]!.at)
  })

  it('fails the stream (not the whole host) when a streamed body errors after the head', async () => {
    const { pool: p, records } = await pool('stream-fails.ts')
    const res = await p.fetch(req('/'))
    expect(res.status).toBe(200)
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('first')
    await expect(reader.read()).rejects.toThrowError()
    await waitFor(() => records.length === 1)
    expect(records[0]).toMatchObject({ outcome: 'error', error: { message: 'upstream broke' } })
    expect(await (await p.fetch(req('/'))).body?.getReader().read()).toMatchObject({ done: false })
  })

  it('refuses a buffered response over max_body_bytes but lets a streamed one through', async () => {
    const { pool: p } = await pool('big.ts', { limits: { max_body_bytes: 100_000 } })
    const buffered = await p.fetch(req('/?n=200000'))
    expect(buffered.status).toBe(500)
    expect((await buffered.json()).error).toMatchObject({
      code: 'ERR_RESPONSE_TOO_LARGE',
      message: expect.stringContaining('200000 bytes, over limits.max_body_bytes (100000)'),
    })
    const small = await p.fetch(req('/?n=1000'))
    expect((await small.arrayBuffer()).byteLength).toBe(1000)
    const streamed = await p.fetch(req('/?stream&n=1000000'))
    expect(streamed.status).toBe(200)
    expect((await streamed.arrayBuffer()).byteLength).toBe(1_000_000)
  })

  it('passes a string body through as text, counting its UTF-8 bytes against max_body_bytes', async () => {
    const { pool: p } = await pool('big.ts', { limits: { max_body_bytes: 100_000 } })
    // 100,000 characters are 200,000 bytes in UTF-8: over the limit although the string's length is not.
    const over = await p.fetch(req('/?text&n=200000'))
    expect((await over.json()).error).toMatchObject({
      code: 'ERR_RESPONSE_TOO_LARGE',
      message: expect.stringContaining('200000 bytes'),
    })
    const text = await p.fetch(req('/?text&n=1000'))
    expect(text.headers.get('content-type')).toBe('text/plain;charset=UTF-8')
    expect(await text.text()).toBe('é'.repeat(500))
    // The function removed the content-type: the host must not add one back.
    const bare = await p.fetch(req('/?text&bare&n=4'))
    expect(bare.headers.get('content-type')).toBeNull()
    expect(await bare.text()).toBe('éé')
  })

  it('applies backpressure: a slow reader holds the producer to the stream window', async () => {
    const { pool: p } = await pool('big.ts')
    const res = await p.fetch(req('/?stream&n=4000000'))
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    await reader.read()
    await new Promise((r) => setTimeout(r, 300))
    // Producer makes a 64 KiB chunk per ms; unthrottled it would have sent ~all 61 chunks by now.
    const { inflight } = p.stats()
    expect(inflight).toBe(1)
    let received = 0
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      received += value.byteLength
    }
    expect(received).toBeGreaterThan(3_000_000)
  })

  it('keeps the invocation open for waitUntil work and logs its rejections', async () => {
    const { pool: p, records } = await pool('wait-until.ts')
    const res = await p.fetch(req('/?ms=200'))
    expect(res.status).toBe(202)
    expect(await res.text()).toBe('accepted')
    expect(p.stats().inflight).toBe(1)
    await waitFor(() => p.stats().inflight === 0)
    expect(records.at(-1)).toMatchObject({ outcome: 'ok', waitUntilErrors: [] })
    expect(records.at(-1)?.durationMs).toBeGreaterThanOrEqual(190)
    await (await p.fetch(req('/?ms=10&fail'))).text()
    await waitFor(() => records.length === 2)
    expect(records.at(-1)?.waitUntilErrors).toEqual([expect.objectContaining({ message: 'background work failed' })])
  })

  it('runs scheduled handlers and reports failure with the noRetry flag', async () => {
    const { pool: ok } = await pool('plain.js')
    expect(await ok.run('scheduled', { cron: '0 2 * * *', scheduledTime: 1 })).toMatchObject({
      ok: true,
      noRetry: false,
    })
    const bundle = await bundleFunction({ name: 'plainfail', main: join(FIXTURES, 'plain.js') }, OUT)
    const failing = new IsolatePool({
      name: 'plainfail',
      bundle,
      env: { vars: { FAIL_CRON: 'yes' }, secrets: {} },
      limits: { timeout_ms: 2000, memory_mb: 64, max_body_bytes: 1024 },
      isolates: { min: 1, max: 1, concurrency: 1, queue: 1 },
    })
    pools.push(failing)
    await failing.start()
    const result = await failing.run('scheduled', { cron: '0 2 * * *', scheduledTime: 1 })
    expect(result).toMatchObject({ ok: false, noRetry: true, outcome: 'error', status: 500 })
  })

  it('answers 501 naming the handlers a module has when the one asked for is missing', async () => {
    const { pool: p } = await pool('plain.js')
    const result = await p.run('object', {
      event: {
        type: 'created',
        bucket: 'b',
        key: 'k',
        size: 1,
        etag: undefined,
        versionId: undefined,
        sequencer: undefined,
        contentType: undefined,
        metadata: {},
        eventName: 'x',
        time: '',
        source: 'fs',
      },
    })
    expect(result).toMatchObject({ ok: false, status: 501 })
    expect(result.error?.message).toMatch(/has no object handler; it exports: fetch, scheduled/)
  })

  it('fails start with ERR_FUNCTION_LOAD when the module throws at load', async () => {
    await expect(pool('load-fails.ts')).rejects.toThrowError(
      /function "load" failed to load .*cannot start: missing configuration/,
    )
  })

  it('queues beyond its isolates and answers 503 with Retry-After when the queue is full', async () => {
    const { pool: p, records } = await pool('slow.ts', { isolates: { min: 1, max: 1, queue: 1 } })
    const first = p.fetch(req('/?ms=300'))
    const second = p.fetch(req('/?ms=10'))
    await new Promise((r) => setTimeout(r, 20))
    const third = await p.fetch(req('/?ms=10'))
    expect(third.status).toBe(503)
    expect(third.headers.get('retry-after')).toBe('1')
    expect((await third.json()).error.code).toBe('ERR_OVERLOADED')
    expect((await first).status).toBe(200)
    expect((await second).status).toBe(200)
    expect(records.find((r) => r.outcome === 'overloaded')).toBeDefined()
  })

  it('grows from the warm minimum to the maximum under concurrent load', async () => {
    const { pool: p } = await pool('slow.ts', { isolates: { min: 1, max: 3, queue: 10 } })
    const all = await Promise.all([1, 2, 3].map(() => p.fetch(req('/?ms=300'))))
    expect(all.map((r) => r.status)).toEqual([200, 200, 200])
    expect(p.stats().isolates).toBe(3)
  })

  it('reloads to a new bundle without dropping an invocation in flight', async () => {
    const { pool: p } = await pool('slow.ts')
    const inflight = p.fetch(req('/?ms=400'))
    // Reload only once the invocation runs in the old isolate (a queued one would start on the new bundle).
    await waitFor(() => p.stats().inflight === 1)
    const next = await bundleFunction({ name: 'slow', main: join(FIXTURES, 'plain.js') }, OUT)
    await p.reload(next)
    expect(p.bundle.version).toBe(next.version)
    expect(await (await p.fetch(req('/after'))).text()).toBe('hello from tests at /after')
    const old = await inflight
    expect(old.status).toBe(200)
    expect(await old.json()).toEqual({ slept: 400 })
  })

  it('keeps the old bundle when the new one fails to load', async () => {
    const { pool: p } = await pool('plain.js')
    const broken = await bundleFunction({ name: 'plain', main: join(FIXTURES, 'load-fails.ts') }, OUT)
    await expect(p.reload(broken)).rejects.toThrowError(/failed to load/)
    expect(await (await p.fetch(req('/still'))).text()).toBe('hello from tests at /still')
  })

  it('takes a pre-started spare thread, hands it the function and its env, and starts a replacement', async () => {
    const spares = new SpareIsolates()
    expect(spares.take(48)).toBeUndefined()
    await waitFor(() => spares.count(48) === 1)
    const bundle = await bundleFunction({ name: 'plain', main: join(FIXTURES, 'plain.js') }, OUT)
    const p = new IsolatePool({
      name: 'plain',
      bundle,
      spares,
      env: { vars: { GREETING: 'a spare' }, secrets: {} },
      limits: { timeout_ms: 2000, memory_mb: 48, max_body_bytes: 1024 },
      isolates: { min: 1, max: 1, concurrency: 1, queue: 1 },
    })
    pools.push(p)
    const started = p.start()
    // Taken synchronously by the pool's first isolate.
    expect(spares.count(48)).toBe(0)
    await started
    expect(await (await p.fetch(req('/s'))).text()).toBe('hello from a spare at /s')
    await waitFor(() => spares.count(48) === 1)
    await spares.close()
    expect(spares.count(48)).toBe(0)
  })

  it('bundles with the esbuild and refuses node:* imports, naming file, line and the rule', async () => {
    await expect(
      bundleFunction({ name: 'bad', main: join(ROOT, 'test/fixtures/bad-import/index.ts') }, OUT),
    ).rejects.toThrowError(
      /Could not bundle function "bad":\n.*index\.ts:1:\d+: .*node:fs.*functions use Web APIs and env bindings only/,
    )
  })
})
