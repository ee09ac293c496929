import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { loadPoolEngine } from '../../../infra/pools/load-engine.ts'
import { startPoolServer, type PoolServer } from '../../../infra/pools/server.ts'
import { HEAVY_HOOK_MS, captureLogger } from '../../helpers.ts'
import { poolConfig, readSse, TIERS } from '../../support/pools.ts'

// The "provider" is another sovra replica (OpenAI-compatible), so the external engine runs against a real server.
let dir: string
let upstream: PoolServer
let ext: PoolServer
const post = (server: PoolServer, path: string, body: unknown): Promise<Response> =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sovra-ext-'))
  const llm = poolConfig({ name: 'provider', engine: 'llama', model: 'tiny:llama', tier: 'restricted', threads: 1 })
  upstream = await startPoolServer({
    pool: llm,
    tiers: TIERS,
    replica: 'p-1',
    log: captureLogger(),
    load: () => loadPoolEngine(llm, { stateDir: dir, probe: false }),
  })
  await upstream.ready
  const pool = poolConfig({
    name: 'ext',
    engine: 'external',
    url: `${upstream.url}/v1`,
    remote_model: 'provider-model',
  })
  ext = await startPoolServer({
    pool,
    tiers: TIERS,
    replica: 'ext-1',
    log: captureLogger(),
    load: () => loadPoolEngine(pool, { stateDir: dir }),
  })
  await ext.ready
}, HEAVY_HOOK_MS)
afterAll(async () => {
  await Promise.all([ext?.close(500), upstream?.close(500)])
  await rm(dir, { recursive: true, force: true })
})

describe('external engine (an OpenAI-compatible provider)', () => {
  const chat = {
    messages: [{ role: 'user', content: 'hello' }],
    max_tokens: 12,
    temperature: 0,
    legal_basis: 'contract',
  }

  it('defaults to clearance internal and refuses confidential data', async () => {
    const res = await post(ext, '/v1/chat/completions', { ...chat, tier: 'confidential' })
    expect(res.status).toBe(403)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_TIER_DENIED')
  })

  it('needs a legal basis on every request', async () => {
    const res = await post(ext, '/v1/chat/completions', { ...chat, legal_basis: undefined })
    expect(res.status).toBe(403)
    const body = (await res.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe('ERR_LEGAL_BASIS')
    expect(body.error.message).toContain(upstream.url)
  })

  it('forwards chat and returns the provider answer with its usage, the same as calling it directly', async () => {
    const direct = (await (await post(upstream, '/v1/chat/completions', chat)).json()) as {
      choices: Array<{ message: { content: string } }>
      usage: { completion_tokens: number }
    }
    const via = (await (await post(ext, '/v1/chat/completions', chat)).json()) as {
      choices: Array<{ message: { content: string } }>
      usage: { completion_tokens: number }
      sovra: { model_digest: string; pool: string }
    }
    expect(via.choices[0]?.message.content).toBe(direct.choices[0]?.message.content)
    expect(via.usage.completion_tokens).toBe(direct.usage.completion_tokens)
    expect(via.sovra).toMatchObject({ pool: 'ext', model_digest: `external:${upstream.url}/v1#provider-model` })
  })

  it('streams through the provider stream', async () => {
    const direct = (await (await post(upstream, '/v1/chat/completions', chat)).json()) as {
      choices: Array<{ message: { content: string } }>
    }
    const events = (await readSse(await post(ext, '/v1/chat/completions', { ...chat, stream: true }))) as Array<{
      choices: Array<{ delta: { content?: string } }>
    }>
    expect(events.map((e) => e.choices[0]?.delta.content ?? '').join('')).toBe(direct.choices[0]?.message.content)
  })

  it('turns a provider failure into 502 ERR_UPSTREAM naming the provider and its answer', async () => {
    // The chat provider has no embeddings: it answers 400, which the external replica reports as an upstream error.
    const res = await post(ext, '/v1/embeddings', { input: ['x'], legal_basis: 'contract' })
    expect(res.status).toBe(502)
    const body = (await res.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe('ERR_UPSTREAM')
    expect(body.error.message).toMatch(/answered 400: .*does not serve embed/)
  })
})
