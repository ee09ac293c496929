import { request as httpRequest } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'

import { MAX_BODY_BYTES } from '../../../infra/pools/pool-app.ts'
import { startPoolServer, type PoolServer } from '../../../infra/pools/server.ts'
import { captureLogger, waitFor } from '../../helpers.ts'
import { poolConfig, TIERS } from '../../support/pools.ts'
import { fakeEngine, type FakeEngine } from './fake-engine.ts'

// The replica's HTTP edge on a real server (@hono/node-server): what only a socket shows, with a fake engine.
const pool = poolConfig({
  name: 'fake',
  engine: 'llama',
  model: 'tiny:llama',
  tier: 'internal',
  class: 'interactive',
  slots: 1,
  queue_max: 1,
})
let server: PoolServer | undefined

async function start(): Promise<{ server: PoolServer; engine: FakeEngine; log: ReturnType<typeof captureLogger> }> {
  const engine = fakeEngine()
  const log = captureLogger()
  server = await startPoolServer({ pool, tiers: TIERS, replica: 'fake-1', log, load: async () => engine })
  await server.ready
  return { server, engine, log }
}
const chat = (
  s: PoolServer,
  content: string,
  extra: Record<string, unknown> = {},
  signal?: AbortSignal,
): Promise<Response> =>
  fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content }], ...extra }),
    ...(signal === undefined ? {} : { signal }),
  })
const status = async (s: PoolServer): Promise<{ busy: number; queue: { interactive: number } }> =>
  (await fetch(`${s.url}/v1/status`)).json() as Promise<{ busy: number; queue: { interactive: number } }>

afterEach(async () => {
  await server?.close(200)
  server = undefined
})

describe('startPoolServer (hono on node)', () => {
  it('drops a queued waiter when its client closes the connection, and never runs it', async () => {
    const { server: s, engine } = await start()
    const holding = chat(s, 'hold')
    await waitFor(() => engine.held.length === 1)
    const client = new AbortController()
    const queued = chat(s, 'queued', {}, client.signal).catch((e: unknown) => e)
    await waitFor(async () => (await status(s)).queue.interactive === 1)
    client.abort()
    expect(await queued).toBeInstanceOf(Error)
    await waitFor(async () => (await status(s)).queue.interactive === 0)
    engine.held[0]?.finish()
    expect((await holding).status).toBe(200)
    expect(engine.prompts).not.toContain('queued')
    expect(await status(s)).toMatchObject({ busy: 0 })
  })

  it('aborts a running generation when its client goes away, and logs it as 400', async () => {
    const { server: s, engine, log } = await start()
    const client = new AbortController()
    const running = chat(s, 'hold', {}, client.signal).catch((e: unknown) => e)
    await waitFor(() => engine.held.length === 1)
    client.abort()
    await running
    await waitFor(() => engine.held[0]?.params.signal.aborted)
    expect(engine.held[0]?.params.signal.reason).toMatchObject({
      code: 'ERR_BAD_REQUEST',
      message: 'client closed the connection',
    })
    await waitFor(() => log.lines.some((l) => l.msg === 'inference'))
    expect(log.lines.find((l) => l.msg === 'inference')).toMatchObject({ op: 'chat', status: 400 })
    expect(await status(s)).toMatchObject({ busy: 0 })
  })

  it('aborts a streaming generation when the client closes mid-stream', async () => {
    const { server: s, engine } = await start()
    const client = new AbortController()
    const res = await chat(s, 'hold', { stream: true }, client.signal)
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    const first = new TextDecoder().decode((await reader.read()).value)
    expect(first).toContain('"role":"assistant"')
    client.abort()
    await waitFor(() => engine.held[0]?.params.signal.aborted)
    await waitFor(async () => (await status(s)).busy === 0)
  })

  it('answers a body over the limit with 413 on the wire', async () => {
    const { server: s } = await start()
    const { url } = s
    const answer = await new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
      const req = httpRequest(
        `${url}/v1/embeddings`,
        { method: 'POST', headers: { 'content-length': String(MAX_BODY_BYTES + 1) } },
        (res) => {
          let body = ''
          res
            .setEncoding('utf8')
            .on('data', (d: string) => void (body += d))
            .on('end', () => resolve({ status: res.statusCode, body }))
        },
      )
      req.on('error', reject)
      req.end(Buffer.alloc(MAX_BODY_BYTES + 1, 0x20))
    })
    expect(answer.status).toBe(413)
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'ERR_BODY_TOO_LARGE' } })
  })

  it('drains in-flight work on close (a stream included) before freeing the model', async () => {
    const { server: s, engine } = await start()
    const plain = chat(s, 'hold')
    await waitFor(() => engine.held.length === 1)
    const streamed = chat(s, 'hold', { stream: true })
    await waitFor(async () => (await status(s)).queue.interactive === 1)
    let closed = false
    const closing = s.close(10_000).then(() => void (closed = true))
    // A kept-alive connection still reaches the app, which answers draining; a new one is refused.
    const health = await fetch(`${s.url}/healthz`).catch(() => undefined)
    if (health !== undefined) expect(await health.json()).toMatchObject({ status: 'draining' })
    const refused = await chat(s, 'late').catch(() => undefined)
    if (refused !== undefined)
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('ERR_SHUTTING_DOWN')
    engine.held[0]?.finish()
    expect((await plain).status).toBe(200)
    await waitFor(() => engine.held.length === 2)
    expect(closed).toBe(false)
    engine.held[1]?.finish()
    const text = await (await streamed).text()
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true)
    await closing
    expect(engine.closed).toBe(true)
    server = undefined
  })

  it('stops waiting after drainMs: the held generation is aborted and the model freed', async () => {
    const { server: s, engine } = await start()
    const running = chat(s, 'hold').catch((e: unknown) => e)
    await waitFor(() => engine.held.length === 1)
    await s.close(100)
    expect(engine.closed).toBe(true)
    expect(await running).toBeInstanceOf(Error)
    // Closing the connections aborts the generation (node emits 'close' after the sockets are destroyed).
    await waitFor(() => engine.held[0]?.params.signal.aborted)
    server = undefined
  })
})
