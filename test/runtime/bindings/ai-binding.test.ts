import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startTestHost, type TestHost } from '../../../runtime/testing/index.ts'
import { captureLogger, ROOT, tempProject } from '../../helpers.ts'

// Two real pools (replica processes on the tiny models) behind env.AI of two functions of different tiers.
const CONFIG = `
[[functions]]
name = "ai"
main = "${join(ROOT, 'test/fixtures/functions/ai.ts')}"
routes = ["/ai/*"]
tier = "internal"
ai = { binding = "AI" }

[[functions]]
name = "secret"
main = "${join(ROOT, 'test/fixtures/functions/ai.ts')}"
routes = ["/secret/*"]
tier = "confidential"
ai = { binding = "AI" }

[[pools]]
name = "qa-conf"
alias = "qa"
engine = "llama"
model = "tiny:llama"
tier = "confidential"
slots = 2
threads = 1
probe = false

[[pools]]
name = "embed"
engine = "onnx"
model = "tiny:embed"
tier = "internal"
class = "batch"
probe = false
`

let host: TestHost
let dir: string
const log = captureLogger()
const post = (path: string, body: unknown): Promise<Response> =>
  host.fetch(path, { method: 'POST', body: JSON.stringify(body) })

beforeAll(async () => {
  dir = tempProject({ 'wrangler-compat.toml': CONFIG })
  host = await startTestHost({ config: join(dir, 'wrangler-compat.toml'), state: join(dir, 'state'), log })
}, 60_000)
afterAll(async () => {
  await host?.close()
})

describe('env.AI through the embedded host', () => {
  it('chats through the router and returns usage, digest, pool, replica and timings', async () => {
    const res = await post('/ai/chat', {
      model: 'qa',
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 8,
      temperature: 0,
    })
    expect(res.status).toBe(200)
    const r = (await res.json()) as Record<string, unknown>
    expect(r).toMatchObject({
      pool: 'qa-conf',
      replica: 'qa-conf-1',
      tier: 'internal',
      class: 'interactive',
      finish_reason: expect.stringMatching(/stop|length/),
    })
    expect(r['model_digest']).toMatch(/^[0-9a-f]{64}$/)
    expect((r['usage'] as { output_tokens: number }).output_tokens).toBeGreaterThan(0)
    expect((r['timings'] as { attempts: number; total_ms: number }).attempts).toBe(1)
    expect(typeof r['text']).toBe('string')
    // The host logs who asked and who answered, for audit.
    expect(log.lines.find((l) => l.msg === 'ai call')).toMatchObject({
      function: 'ai',
      op: 'chat',
      model: 'qa',
      tier: 'internal',
      pool: 'qa-conf',
      replica: 'qa-conf-1',
      model_digest: r['model_digest'],
      status: 200,
    })
  })

  it('takes a valibot schema directly and returns typed, validated json', async () => {
    const res = await post('/ai/triage', {
      model: 'qa',
      messages: [{ role: 'user', content: 'assess' }],
      max_tokens: 200,
      temperature: 0.7,
      seed: 2,
    })
    expect(res.status).toBe(200)
    const r = (await res.json()) as { json: { approve: unknown; risk: unknown }; approve_type: string; text: string }
    expect(r.approve_type).toBe('boolean')
    expect(['low', 'medium', 'high']).toContain(r.json.risk)
    expect(JSON.parse(r.text)).toEqual(r.json)
  })

  it('embeds with the embedding pool', async () => {
    const r = (await (await post('/ai/embed', { model: 'embed', input: ['銀行のリスク', 'bank risk'] })).json()) as {
      vectors: number[][]
      pool: string
      class: string
    }
    expect(r.pool).toBe('embed')
    expect(r.class).toBe('batch')
    expect(r.vectors).toHaveLength(2)
    expect(Math.hypot(...(r.vectors[0] ?? []))).toBeCloseTo(1, 5)
  })

  it("refuses a confidential function's data to a pool cleared only for internal, naming both tiers", async () => {
    const res = await post('/secret/embed', { model: 'embed', input: ['confidential text'] })
    const r = (await res.json()) as { error: { code: string; message: string } }
    expect(r.error.code).toBe('ERR_TIER_DENIED')
    expect(r.error.message).toContain('"confidential"')
    expect(r.error.message).toContain('embed (clearance internal)')
    expect(log.lines.find((l) => l.msg === 'ai call failed' && l['function'] === 'secret')).toMatchObject({
      tier: 'confidential',
      code: 'ERR_TIER_DENIED',
      status: 403,
    })
    // The same function may still use the confidential LLM pool; and may label public data down explicitly.
    expect(
      (await post('/secret/chat', { model: 'qa', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 })).status,
    ).toBe(200)
    expect((await post('/secret/embed', { model: 'embed', tier: 'public', input: ['press release'] })).status).toBe(200)
  })

  it('reports an unknown model with the valid ones', async () => {
    const r = (await (
      await post('/ai/chat', { model: 'gpt-4', messages: [{ role: 'user', content: 'x' }] })
    ).json()) as { error: { code: string; message: string } }
    expect(r.error).toMatchObject({
      code: 'ERR_NOT_FOUND',
      message: expect.stringContaining('valid models: qa, embed'),
    })
  })

  it('lists pools on /_sovra/pools', async () => {
    const pools = (await (await host.fetch('/_sovra/pools')).json()) as Array<{
      name: string
      ready: number
      replicas: Array<{ model_sha256: string }>
    }>
    expect(pools.map((p) => [p.name, p.ready])).toEqual([
      ['qa-conf', 1],
      ['embed', 1],
    ])
    expect(pools[0]?.replicas[0]?.model_sha256).toMatch(/^[0-9a-f]{64}$/)
  })
})
