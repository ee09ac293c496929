import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { loadPoolEngine } from '../../../infra/pools/load-engine.ts'
import { startPoolServer, type PoolServer } from '../../../infra/pools/server.ts'
import { HEAVY_HOOK_MS, captureLogger } from '../../helpers.ts'
import { poolConfig, TIERS } from '../../support/pools.ts'

let dir: string
let embed: PoolServer
let classify: PoolServer
const post = (server: PoolServer, path: string, body: unknown): Promise<Response> =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sovra-onnx-srv-'))
  const e = poolConfig({ name: 'embed', engine: 'onnx', model: 'tiny:embed', tier: 'internal', class: 'batch' })
  const c = poolConfig({ name: 'sentiment', engine: 'onnx', model: 'tiny:classify', tier: 'internal' })
  // probe on: the first start probes each ONNX file in a child process and remembers it by digest.
  embed = await startPoolServer({
    pool: e,
    tiers: TIERS,
    replica: 'embed-1',
    log: captureLogger(),
    load: () => loadPoolEngine(e, { stateDir: dir }),
  })
  classify = await startPoolServer({
    pool: c,
    tiers: TIERS,
    replica: 'sentiment-1',
    log: captureLogger(),
    load: () => loadPoolEngine(c, { stateDir: dir }),
  })
  await Promise.all([embed.ready, classify.ready])
}, HEAVY_HOOK_MS)
afterAll(async () => {
  await Promise.all([embed?.close(500), classify?.close(500)])
  await rm(dir, { recursive: true, force: true })
})

describe('pool server (onnx, tiny models)', () => {
  it('probed each model file once in a child process and remembered it by digest', async () => {
    const health = (await (await fetch(`${embed.url}/healthz`)).json()) as { model: { sha256: string } }
    expect((await readdir(join(dir, 'probed'))).sort()).toContain(`onnx-${health.model.sha256}`)
    expect(await readdir(join(dir, 'probed'))).toHaveLength(2)
  })

  it('answers /v1/embeddings in OpenAI shape, one unit vector per input in order, with usage and digest', async () => {
    const res = await post(embed, '/v1/embeddings', {
      input: ['銀行のリスク報告', 'bank risk report', '銀行のリスク報告'],
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-sovra-model-digest')).toMatch(/^[0-9a-f]{64}$/)
    const body = (await res.json()) as {
      object: string
      data: Array<{ index: number; embedding: number[] }>
      usage: { prompt_tokens: number }
      model: string
      sovra: { class: string }
    }
    expect(body.object).toBe('list')
    expect(body.model).toBe('tiny-embed')
    expect(body.data.map((d) => d.index)).toEqual([0, 1, 2])
    expect(body.data[0]?.embedding).toEqual(body.data[2]?.embedding)
    expect(body.data[0]?.embedding).not.toEqual(body.data[1]?.embedding)
    expect(Math.hypot(...(body.data[1]?.embedding ?? []))).toBeCloseTo(1, 5)
    expect(body.usage.prompt_tokens).toBeGreaterThan(6)
    expect(body.sovra.class).toBe('batch')
    const single = (await (await post(embed, '/v1/embeddings', { input: 'bank risk report' })).json()) as typeof body
    expect(single.data[0]?.embedding).toEqual(body.data[1]?.embedding)
  })

  it('answers /v1/classify with label scores that sum to 1, highest first', async () => {
    const body = (await (await post(classify, '/v1/classify', { input: ['good', 'bad'] })).json()) as {
      data: Array<{ labels: Array<{ label: string; score: number }> }>
    }
    expect(body.data).toHaveLength(2)
    for (const d of body.data) {
      expect(d.labels.map((l) => l.label).sort()).toEqual(['negative', 'neutral', 'positive'])
      expect(d.labels.reduce((n, l) => n + l.score, 0)).toBeCloseTo(1, 6)
      expect(d.labels[0]!.score).toBeGreaterThanOrEqual(d.labels[1]!.score)
    }
  })

  it('rejects chat on an embedding pool and empty input, and refuses tiers above clearance', async () => {
    const chat = await post(embed, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] })
    expect(((await chat.json()) as { error: { message: string } }).error.message).toMatch(
      /does not serve chat; it serves: embed/,
    )
    const empty = await post(embed, '/v1/embeddings', { input: [] })
    expect(empty.status).toBe(400)
    expect(((await empty.json()) as { error: { message: string } }).error.message).toMatch(/input/)
    expect((await post(embed, '/v1/embeddings', { input: ['x'], tier: 'restricted' })).status).toBe(403)
  })
})
