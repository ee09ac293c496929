import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { Engine } from '../../../infra/pools/engine.ts'
import { loadPoolEngine } from '../../../infra/pools/load-engine.ts'
import { startPoolServer, type PoolServer } from '../../../infra/pools/server.ts'
import { HEAVY_HOOK_MS, captureLogger, waitFor } from '../../helpers.ts'
import { poolConfig, readSse, TIERS } from '../../support/pools.ts'

let dir: string
let server: PoolServer
let lines: Array<Record<string, unknown>>
/** Chats whose first message is `hold`, parked after admission (their slot taken) until the test lets them go. */
const held: Array<() => void> = []

/** Wraps the engine so a test decides when a slot frees up, instead of racing a real generation with sleeps. */
function gated(engine: Engine): Engine {
  const chat = engine.chat?.bind(engine)
  return {
    ...engine,
    close: () => engine.close(),
    async chat(params, slot) {
      if (params.messages[0]?.content === 'hold') await new Promise<void>((resolve) => held.push(resolve))
      if (chat === undefined) throw new Error('no chat')
      return chat(params, slot)
    },
  }
}
const status = async (): Promise<{ busy: number; queue: { interactive: number } }> =>
  (await fetch(`${server.url}/v1/status`)).json() as Promise<{ busy: number; queue: { interactive: number } }>

async function chat(body: Record<string, unknown>): Promise<Response> {
  return fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
}
const hello = { messages: [{ role: 'user', content: 'hello, the bank report?' }], max_tokens: 24, temperature: 0 }

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sovra-pool-'))
  const pool = poolConfig({
    name: 'qa',
    engine: 'llama',
    model: 'tiny:llama',
    tier: 'internal',
    class: 'interactive',
    slots: 1,
    queue_max: 1,
    threads: 1,
  })
  const captured = captureLogger()
  lines = captured.lines
  server = await startPoolServer({
    pool,
    tiers: TIERS,
    replica: 'qa-1',
    log: captured,
    load: async () => gated(await loadPoolEngine(pool, { stateDir: dir, probe: false })),
  })
  await server.ready
}, HEAVY_HOOK_MS)

afterAll(async () => {
  await server?.close(1000)
  await rm(dir, { recursive: true, force: true })
})

describe('pool server (llama, tiny model)', () => {
  it('is ready on /healthz with the sha256 of the model file it loaded', async () => {
    const res = await fetch(`${server.url}/healthz`)
    expect(res.status).toBe(200)
    const body = (await res.json()) as { status: string; model: { sha256: string; path: string } }
    const expected = createHash('sha256')
      .update(await readFile(join(dir, 'models', 'tiny-llama.gguf')))
      .digest('hex')
    expect(body.status).toBe('ready')
    expect(body.model.sha256).toBe(expected)
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    expect(metrics).toContain(`sha256="${expected}"`)
  })

  it('answers an OpenAI chat completion with usage, digest and timings; temperature 0 is reproducible', async () => {
    const a = (await (await chat(hello)).json()) as {
      choices: Array<{ message: { content: string }; finish_reason: string }>
      usage: { prompt_tokens: number; completion_tokens: number }
      sovra: { model_digest: string; replica: string; pool: string; timings: { total_ms: number } }
    }
    const b = (await (await chat(hello)).json()) as typeof a
    expect(a.choices[0]?.message.content.length).toBeGreaterThan(0)
    expect(a.choices[0]?.message.content).toBe(b.choices[0]?.message.content)
    expect(a.usage.prompt_tokens).toBeGreaterThan(5)
    expect(a.usage.completion_tokens).toBeGreaterThan(0)
    expect(a.usage.completion_tokens).toBeLessThanOrEqual(24)
    expect(a.sovra).toMatchObject({ pool: 'qa', replica: 'qa-1' })
    expect(a.sovra.model_digest).toMatch(/^[0-9a-f]{64}$/)
    const log = lines.find((l) => l['msg'] === 'inference')
    expect(log).toMatchObject({ pool: 'qa', op: 'chat', status: 200, class: 'interactive', tier: 'internal' })
  })

  it('streams the same text as SSE chunks, ending with finish_reason and usage', async () => {
    const whole = (await (await chat(hello)).json()) as { choices: Array<{ message: { content: string } }> }
    const res = await chat({ ...hello, stream: true, stream_options: { include_usage: true } })
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/)
    const events = (await readSse(res)) as Array<{
      choices: Array<{ delta: { content?: string }; finish_reason: string | null }>
      usage?: { completion_tokens: number }
    }>
    const text = events.map((e) => e.choices[0]?.delta.content ?? '').join('')
    expect(text).toBe(whole.choices[0]?.message.content)
    expect(events.some((e) => e.choices[0]?.finish_reason !== null && e.choices[0]?.finish_reason !== undefined)).toBe(
      true,
    )
    expect(events.at(-1)?.usage?.completion_tokens).toBeGreaterThan(0)
  })

  it('enforces a JSON schema with a grammar and returns output that validates', async () => {
    const schema = {
      type: 'object',
      properties: { approve: { type: 'boolean' }, risk: { enum: ['low', 'medium', 'high'] } },
      required: ['approve', 'risk'],
    }
    for (const seed of [1, 2, 3]) {
      const res = await chat({
        messages: [{ role: 'user', content: 'assess' }],
        max_tokens: 64,
        temperature: 0.8,
        seed,
        response_format: { type: 'json_schema', json_schema: { name: 'a', schema } },
      })
      expect(res.status).toBe(200)
      const out = JSON.parse(
        ((await res.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content ?? '',
      ) as { approve: unknown; risk: unknown }
      expect(typeof out.approve).toBe('boolean')
      expect(['low', 'medium', 'high']).toContain(out.risk)
    }
  })

  it('refuses truncated structured output with ERR_MODEL_OUTPUT instead of repairing it', async () => {
    const schema = { type: 'object', properties: { approve: { type: 'boolean' } }, required: ['approve'] }
    const res = await chat({
      messages: [{ role: 'user', content: 'x' }],
      max_tokens: 2,
      temperature: 0,
      response_format: { type: 'json_schema', json_schema: { schema } },
    })
    expect(res.status).toBe(502)
    const body = (await res.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe('ERR_MODEL_OUTPUT')
    expect(body.error.message).toMatch(/truncated at max_tokens 2/)
  })

  it('refuses a malformed or unsatisfiable JSON schema with 400 naming its path and what is valid', async () => {
    const ask = (schema: unknown): Promise<Response> =>
      chat({ ...hello, response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } })
    const cases: Array<[unknown, RegExp]> = [
      [
        { type: 'banana' },
        /response_format\.json_schema\.schema\.type: expected one of "string", "number", "integer", "boolean", "object", "array", "null".*received "banana"/,
      ],
      [{ enum: [] }, /response_format\.json_schema\.schema\.enum: expected a non-empty array of values, received \[\]/],
      [
        { type: 'object', properties: { risk: { type: 'string', enum: [1, 2] } } },
        /schema\.properties\.risk\.enum: no value is of type string, so nothing can match; received \[1,2\]/,
      ],
    ]
    const before = lines.filter((l) => l['msg'] === 'inference').length
    for (const [schema, message] of cases) {
      const res = await ask(schema)
      expect(res.status).toBe(400)
      const body = (await res.json()) as { error: { code: string; message: string } }
      expect(body.error.code).toBe('ERR_BAD_REQUEST')
      expect(body.error.message).toMatch(message)
    }
    // Refused before admission: no slot was taken, no generation ran.
    expect(lines.filter((l) => l['msg'] === 'inference').length).toBe(before)
  })

  it('refuses a prompt over the context with 400 naming the counts, and fits the default max_tokens to the room left', async () => {
    // The tiny model's context is 2,048 tokens. A 200k-character prompt was answered 200 (node-llama-cpp silently
    // shifted the context, dropping most of the prompt).
    const huge = await chat({ messages: [{ role: 'user', content: 'a b '.repeat(50_000) }], max_tokens: 16 })
    expect(huge.status).toBe(400)
    const err = ((await huge.json()) as { error: Record<string, unknown> & { code: string; message: string } }).error
    expect(err).toMatchObject({ code: 'ERR_BAD_REQUEST', max_tokens: 16, context_tokens: 2048 })
    expect(err['prompt_tokens']).toBeGreaterThan(2048)
    expect(err.message).toMatch(
      new RegExp(
        `^messages: the prompt is ${String(err['prompt_tokens'])} tokens, over the model's context of 2048 tokens \\(max_tokens 16\\); valid: a prompt of at most 2032 tokens with max_tokens 16$`,
      ),
    )
    // A prompt that fits, but not with the max_tokens asked for: refused, naming the most that fits.
    const near = { messages: [{ role: 'user', content: 'a b '.repeat(620) }], temperature: 0 }
    const over = await chat({ ...near, max_tokens: 1000 })
    expect(over.status).toBe(400)
    const e2 = ((await over.json()) as { error: { message: string; prompt_tokens: number } }).error
    const room = 2048 - e2.prompt_tokens
    expect(room).toBeGreaterThan(0)
    expect(room).toBeLessThan(256)
    expect(e2.message).toContain(`valid: max_tokens at most ${room} with this prompt`)
    // Without max_tokens, the pool's default (256) is lowered to the room left instead.
    const fitted = await chat(near)
    expect(fitted.status).toBe(200)
    const usage = ((await fitted.json()) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage
    expect(usage.prompt_tokens).toBe(e2.prompt_tokens)
    expect(usage.completion_tokens).toBeLessThanOrEqual(room)
  }, 30_000)

  it('refuses data above the pool clearance with 403 ERR_TIER_DENIED naming both tiers', async () => {
    const res = await chat({ ...hello, tier: 'confidential' })
    expect(res.status).toBe(403)
    const body = (await res.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe('ERR_TIER_DENIED')
    expect(body.error.message).toContain('confidential')
    expect(body.error.message).toContain('internal')
    expect((await chat({ ...hello, tier: 'public' })).status).toBe(200)
  })

  it('rejects bad bodies with every problem named, and operations the model does not serve', async () => {
    const bad = await chat({ messages: [], temperature: 7, tier: 'secret' })
    expect(bad.status).toBe(400)
    const msg = ((await bad.json()) as { error: { message: string } }).error.message
    expect(msg).toMatch(/messages: .*at least one message/)
    expect(msg).toMatch(/temperature/)
    expect(
      ((await (await chat({ ...hello, tier: 'secret' })).json()) as { error: { message: string } }).error.message,
    ).toMatch(/unknown tier "secret"; valid tiers are: public, internal, confidential, restricted/)
    const notJson = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: '{nope' })
    expect(notJson.status).toBe(400)
    const embed = await fetch(`${server.url}/v1/embeddings`, { method: 'POST', body: JSON.stringify({ input: ['a'] }) })
    expect(embed.status).toBe(400)
    expect(((await embed.json()) as { error: { message: string } }).error.message).toMatch(
      /does not serve embed; it serves: chat/,
    )
  })

  it('drops a queued request whose deadline passes (504) and answers 429 with Retry-After when the queue is full', async () => {
    // One slot, queue of one. A held chat takes the slot for as long as the test needs; when let go, it runs a long
    // generation for real (the grammar forbids stopping before 250 items).
    const schema = { type: 'array', items: { enum: ['yes', 'no'] }, minItems: 250, maxItems: 250 }
    const long = chat({
      messages: [{ role: 'user', content: 'hold' }],
      max_tokens: 1900,
      temperature: 1,
      seed: 7,
      response_format: { type: 'json_schema', json_schema: { schema } },
    })
    await waitFor(() => held.length === 1)
    expect(await status()).toMatchObject({ busy: 1, queue: { interactive: 0 } })
    // The slot cannot free up, so this one can only wait out its deadline in the queue.
    const dropped = await chat({ ...hello, deadline_ms: 150 })
    expect(dropped.status).toBe(504)
    expect(((await dropped.json()) as { error: { message: string } }).error.message).toMatch(/in the queue/)
    // A waiter with the default deadline fills the queue; with the slot still held, the next one is refused.
    const queued = chat(hello)
    await waitFor(async () => (await status()).queue.interactive === 1)
    const full = await chat(hello)
    expect(full.status).toBe(429)
    expect(full.headers.get('retry-after')).toBe('1')
    expect(((await full.json()) as { error: { code: string } }).error.code).toBe('ERR_QUEUE_FULL')
    held.shift()?.()
    const longRes = await long
    expect(longRes.status).toBe(200)
    const items = JSON.parse(
      ((await longRes.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content ??
        '',
    ) as string[]
    expect(items).toHaveLength(250)
    expect((await queued).status).toBe(200)
    expect(await status()).toMatchObject({ busy: 0, queue: { interactive: 0 } })
  }, 60_000)
})
