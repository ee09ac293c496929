import { describe, expect, it } from 'vitest'

import { createPoolApp, MAX_BODY_BYTES } from '../../../infra/pools/pool-app.ts'
import { captureLogger, waitFor } from '../../helpers.ts'
import { poolConfig, readSse } from '../../support/pools.ts'
import { fakeEngine, memoryReplica } from './fake-engine.ts'

const pool = poolConfig({
  name: 'fake',
  engine: 'llama',
  model: 'tiny:llama',
  tier: 'internal',
  class: 'interactive',
  slots: 1,
  queue_max: 1,
})
const VALID =
  'valid: GET /healthz, GET /metrics, GET /v1/status, POST /v1/chat/completions, POST /v1/embeddings, POST /v1/classify'
const chatInit = (content: string, extra: Record<string, unknown> = {}, signal?: AbortSignal): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ messages: [{ role: 'user', content }], ...extra }),
  ...(signal === undefined ? {} : { signal }),
})

function loaded() {
  const engine = fakeEngine()
  const log = captureLogger()
  const replica = memoryReplica(pool, engine, log)
  return { engine, log, replica, app: createPoolApp(replica) }
}

describe('createPoolApp', () => {
  it('answers an unknown path with 404 ERR_NOT_FOUND naming the valid routes', async () => {
    const { app } = loaded()
    const res = await app.request('/v1/models?x=1')
    expect(res.status).toBe(404)
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(await res.json()).toEqual({ error: { code: 'ERR_NOT_FOUND', message: `no route GET /v1/models; ${VALID}` } })
  })

  it('answers a wrong method on a known path with the same 404 (a replica never answered 405)', async () => {
    const { app } = loaded()
    const get = await app.request('/v1/chat/completions')
    expect(get.status).toBe(404)
    expect(await get.json()).toEqual({
      error: { code: 'ERR_NOT_FOUND', message: `no route GET /v1/chat/completions; ${VALID}` },
    })
    const post = await app.request('/healthz', { method: 'POST', body: '{}' })
    expect(post.status).toBe(404)
    expect(((await post.json()) as { error: { message: string } }).error.message).toBe(
      `no route POST /healthz; ${VALID}`,
    )
    expect((await app.request('/healthz', { method: 'HEAD' })).status).toBe(404)
    expect((await app.request('/healthz/')).status).toBe(404)
  })

  it('answers health, status and metrics while loading with 503, and refuses inference with ERR_OVERLOADED', async () => {
    const replica = memoryReplica(pool, undefined, captureLogger())
    const app = createPoolApp(replica)
    expect((await app.request('/healthz')).status).toBe(503)
    expect(await (await app.request('/healthz')).json()).toMatchObject({
      status: 'loading',
      pool: 'fake',
      replica: 'mem-1',
    })
    expect(await (await app.request('/metrics')).json()).toEqual({ status: 'loading' })
    expect(await (await app.request('/v1/status')).json()).toMatchObject({ ready: false, busy: 0, model_sha256: null })
    const chat = await app.request('/v1/chat/completions', chatInit('hello'))
    expect(chat.status).toBe(503)
    expect(await chat.json()).toEqual({
      error: { code: 'ERR_OVERLOADED', message: 'replica mem-1 is not ready (model loading)' },
    })
    replica.loadError = new Error('bad file')
    expect(await (await app.request('/healthz')).json()).toMatchObject({ status: 'failed', error: 'bad file' })
    replica.closing = true
    expect((await app.request('/v1/embeddings', { method: 'POST', body: '{}' })).status).toBe(503)
  })

  it('answers chat with the x-sovra headers, the sovra member, one inference log line and a latency sample', async () => {
    const { app, log, replica } = loaded()
    const res = await app.request('/v1/chat/completions', chatInit('hello'))
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(res.headers.get('x-sovra-pool')).toBe('fake')
    expect(res.headers.get('x-sovra-replica')).toBe('mem-1')
    expect(res.headers.get('x-sovra-model-digest')).toBe('ab'.repeat(32))
    const body = (await res.json()) as {
      choices: Array<{ message: { content: string } }>
      sovra: Record<string, unknown>
    }
    expect(body.choices[0]?.message.content).toBe('hi there')
    expect(body.sovra).toMatchObject({ pool: 'fake', replica: 'mem-1', tier: 'internal', class: 'interactive' })
    expect(log.lines.filter((l) => l.msg === 'inference')).toEqual([
      expect.objectContaining({ op: 'chat', status: 200, tokens_in: 2, tokens_out: 2 }),
    ])
    expect(replica.latency.interactive.summary(60_000).requests).toBe(1)
    const metrics = await app.request('/metrics')
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/)
    expect(await metrics.text()).toContain('sovra_pool_queue_seconds')
  })

  it('streams SSE with the x-sovra headers and ends a failed generation with an error event and [DONE]', async () => {
    const { app, log } = loaded()
    const ok = await app.request('/v1/chat/completions', chatInit('hello', { stream: true }))
    expect(ok.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(ok.headers.get('cache-control')).toBe('no-cache')
    expect(ok.headers.get('x-sovra-replica')).toBe('mem-1')
    const text = await ok.text()
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true)
    const events = (await readSse(new Response(text))) as Array<{
      choices: Array<{ delta: { content?: string; role?: string }; finish_reason: string | null }>
    }>
    expect(events.map((e) => e.choices[0]?.delta.content ?? '').join('')).toBe('hi there')
    expect(events[0]?.choices[0]?.delta.role).toBe('assistant')
    expect(events.at(-1)?.choices[0]?.finish_reason).toBe('stop')

    const failed = await app.request('/v1/chat/completions', chatInit('fail', { stream: true }))
    expect(failed.status).toBe(200)
    const raw = await failed.text()
    expect(
      raw.endsWith(
        `data: ${JSON.stringify({ error: { code: 'ERR_INTERNAL', message: 'replica error: engine broke' } })}\n\ndata: [DONE]\n\n`,
      ),
    ).toBe(true)
    expect(raw).toContain('"content":"par"')
    expect(log.lines.filter((l) => l.msg === 'inference').map((l) => l['status'])).toEqual([200, 500])
  })

  it('drops a queued request from the queue when its client aborts, without running it', async () => {
    const { app, engine, replica } = loaded()
    const holding = app.request('/v1/chat/completions', chatInit('hold'))
    await waitFor(() => engine.held.length === 1)
    const client = new AbortController()
    const queued = app.request('/v1/chat/completions', chatInit('queued', {}, client.signal))
    await waitFor(() => replica.admission.depth('interactive') === 1)
    client.abort()
    const res = await queued
    expect(res.status).toBe(400)
    expect(await res.json()).toEqual({ error: { code: 'ERR_BAD_REQUEST', message: 'client closed the connection' } })
    expect(replica.admission.depth('interactive')).toBe(0)
    engine.held[0]?.finish()
    expect((await holding).status).toBe(200)
    expect(engine.prompts).toEqual(['hold'])
    expect(replica.admission.busy).toBe(0)
  })

  it('aborts a running generation when its client aborts and frees the slot', async () => {
    const { app, engine, replica, log } = loaded()
    const client = new AbortController()
    const running = app.request('/v1/chat/completions', chatInit('hold', {}, client.signal))
    await waitFor(() => engine.held.length === 1)
    client.abort()
    expect((await running).status).toBe(400)
    expect(engine.held[0]?.params.signal.aborted).toBe(true)
    expect(engine.held[0]?.params.signal.reason).toMatchObject({
      code: 'ERR_BAD_REQUEST',
      message: 'client closed the connection',
    })
    expect(replica.admission.busy).toBe(0)
    expect(log.lines.find((l) => l.msg === 'inference')).toMatchObject({ op: 'chat', status: 400 })
  })

  it('answers 429 with Retry-After when the queue is full, and 504 "in the queue" when a queued deadline passes', async () => {
    const { app, engine, replica } = loaded()
    const holding = app.request('/v1/chat/completions', chatInit('hold'))
    await waitFor(() => engine.held.length === 1)
    // The slot stays held until finish(): the queued one can only wait out its deadline.
    const late = await app.request('/v1/chat/completions', chatInit('late', { deadline_ms: 60 }))
    expect(late.status).toBe(504)
    expect(((await late.json()) as { error: { message: string } }).error.message).toMatch(/in the queue/)
    const queued = app.request('/v1/chat/completions', chatInit('queued'))
    await waitFor(() => replica.admission.depth('interactive') === 1)
    const full = await app.request('/v1/chat/completions', chatInit('full'))
    expect(full.status).toBe(429)
    expect(full.headers.get('retry-after')).toBe('1')
    expect(((await full.json()) as { error: { code: string; retry_after: number } }).error).toMatchObject({
      code: 'ERR_QUEUE_FULL',
      retry_after: 1,
    })
    engine.held[0]?.finish()
    expect((await holding).status).toBe(200)
    expect((await queued).status).toBe(200)
    expect(engine.prompts).not.toContain('late')
    expect(engine.prompts).not.toContain('full')
  })

  it('refuses a body over the limit with 413 ERR_BODY_TOO_LARGE and a non-JSON body with 400', async () => {
    const { app } = loaded()
    const big = await app.request('/v1/embeddings', { method: 'POST', body: new Uint8Array(MAX_BODY_BYTES + 1) })
    expect(big.status).toBe(413)
    expect(await big.json()).toEqual({
      error: { code: 'ERR_BODY_TOO_LARGE', message: `request body over ${MAX_BODY_BYTES} bytes` },
    })
    const bad = await app.request('/v1/embeddings', { method: 'POST', body: '{nope' })
    expect(bad.status).toBe(400)
    expect(await bad.json()).toEqual({
      error: { code: 'ERR_BAD_REQUEST', message: 'expected a JSON body, received "{nope"' },
    })
    const embed = await app.request('/v1/embeddings', { method: 'POST', body: JSON.stringify({ input: 'a' }) })
    expect(embed.status).toBe(200)
    expect(embed.headers.get('x-sovra-pool')).toBe('fake')
    const classify = await app.request('/v1/classify', { method: 'POST', body: JSON.stringify({ input: 'a' }) })
    expect(((await classify.json()) as { error: { message: string } }).error.message).toMatch(
      /does not serve classify; it serves: chat, embed/,
    )
  })
})
