import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

import { SovraError } from '../../runtime/core/errors.ts'
import type { WorkClass } from './admission.ts'
import type { EngineOperation } from './engine.ts'
import { checkJson } from './json-check.ts'
import { contentText, type ChatBody, type InputsBody } from './requests.ts'
import { DEFAULT_DEADLINE_MS, sendError, sendJson, type ReplicaState } from './server.ts'

/** What a served request reports back to the server loop. */
export interface Served {
  cls: WorkClass
  totalMs: number
}

interface Admitted {
  cls: WorkClass
  tier: string
  slot: number
  queueMs: number
  signal: AbortSignal
  started: number
  release(): void
}

/**
 * Checks a request against the replica (operation, tier clearance, legal basis) and waits for a slot. The signal
 * aborts when the client goes away or the deadline passes.
 */
async function admit(state: ReplicaState, op: EngineOperation, body: { tier?: string | undefined; class?: WorkClass | undefined; deadline_ms?: number | undefined; legal_basis?: string | undefined }, req: IncomingMessage, res: ServerResponse): Promise<Admitted> {
  const started = performance.now()
  const { pool, tiers, engine } = state
  if (!engine.operations.has(op)) {
    throw new SovraError('ERR_BAD_REQUEST', `pool ${JSON.stringify(pool.name)} (${engine.kind}, model ${engine.model.name}) does not serve ${op}; it serves: ${[...engine.operations].join(', ')}`)
  }
  const tier = body.tier ?? pool.tier
  if (!tiers.names.includes(tier)) throw new SovraError('ERR_BAD_REQUEST', `tier: unknown tier ${JSON.stringify(tier)}; valid tiers are: ${tiers.names.join(', ')}`)
  tiers.assert(pool.clearance, tier, `pool ${JSON.stringify(pool.name)}`)
  if (engine.kind === 'external' && body.legal_basis === undefined) {
    throw new SovraError('ERR_LEGAL_BASIS', `pool ${JSON.stringify(pool.name)} sends data to an external provider (${engine.model.path}); the request needs legal_basis (e.g. "contract", "consent"), received nothing`)
  }
  const cls = body.class ?? pool.class
  const deadlineMs = body.deadline_ms ?? DEFAULT_DEADLINE_MS
  const controller = new AbortController()
  const onClose = (): void => {
    if (!res.writableFinished) controller.abort(new SovraError('ERR_BAD_REQUEST', 'client closed the connection'))
  }
  res.once('close', onClose)
  const timer = setTimeout(() => controller.abort(new SovraError('ERR_TIMEOUT', `deadline of ${deadlineMs} ms passed while running`)), deadlineMs)
  const grant = await state.admission.acquire(cls, Date.now() + deadlineMs - (performance.now() - started), controller.signal).catch((e: unknown) => {
    clearTimeout(timer)
    throw e
  })
  let released = false
  return {
    cls, tier, slot: grant.slot, queueMs: grant.queuedMs, signal: controller.signal, started,
    release() {
      if (released) return
      released = true
      clearTimeout(timer)
      res.off('close', onClose)
      state.admission.release(grant.slot)
    },
  }
}

function meta(state: ReplicaState, a: Admitted, extra: Record<string, number | undefined>): Record<string, unknown> {
  return {
    pool: state.pool.name, replica: state.replica, tier: a.tier, class: a.cls,
    model_digest: state.engine.model.sha256, model_name: state.engine.model.name,
    timings: { queue_ms: a.queueMs, ...extra, total_ms: Math.round(performance.now() - a.started) },
  }
}

function headers(state: ReplicaState): Record<string, string> {
  return { 'x-sovra-pool': state.pool.name, 'x-sovra-replica': state.replica, 'x-sovra-model-digest': state.engine.model.sha256 }
}

function abortReason(signal: AbortSignal, e: unknown): unknown {
  return signal.aborted && signal.reason instanceof SovraError ? signal.reason : e
}

/**
 * Serves `POST /v1/chat/completions`: OpenAI's response (or SSE chunks when `stream`), with a `sovra` member
 * carrying pool, replica, model digest and timings. JSON-schema output is checked after generation: a truncated or
 * non-conforming answer is ERR_MODEL_OUTPUT (502), never repaired.
 */
export async function runChat(state: ReplicaState, body: ChatBody, req: IncomingMessage, res: ServerResponse): Promise<Served> {
  const a = await admit(state, 'chat', body, req, res)
  const id = `chatcmpl-${randomUUID()}`
  const created = Math.floor(Date.now() / 1000)
  const model = state.engine.model.name
  const maxTokens = Math.min(body.max_completion_tokens ?? body.max_tokens ?? state.pool.maxTokens, 1 << 20)
  const schema = body.response_format?.type === 'json_schema' ? body.response_format.json_schema.schema : undefined
  let ttftMs: number | undefined
  const stream = body.stream === true
  const chunk = (delta: Record<string, unknown>, finish: string | null): string =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
  let out
  try {
    if (stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...headers(state) })
      res.write(chunk({ role: 'assistant', content: '' }, null))
    }
    out = await state.engine.chat?.({
      messages: body.messages.map((m) => ({ role: m.role === 'developer' ? 'system' : m.role, content: contentText(m.content) })),
      maxTokens,
      temperature: body.temperature ?? 1,
      ...(body.seed === undefined ? {} : { seed: body.seed }),
      ...(body.top_p === undefined ? {} : { topP: body.top_p }),
      ...(schema === undefined ? {} : { jsonSchema: schema }),
      signal: a.signal,
      // Streams need text; otherwise a token callback is enough to time the first token.
      ...(stream
        ? { onText: (text: string) => {
          ttftMs ??= Math.round(performance.now() - a.started)
          if (text.length > 0) res.write(chunk({ content: text }, null))
        } }
        : { onToken: () => {
          ttftMs ??= Math.round(performance.now() - a.started)
        } }),
    }, a.slot).catch((e: unknown) => {
      throw abortReason(a.signal, e)
    })
    if (out === undefined) throw new SovraError('ERR_INTERNAL', 'engine has no chat')
    if (schema !== undefined) {
      if (out.finishReason === 'length') {
        throw new SovraError('ERR_MODEL_OUTPUT', `structured output truncated at max_tokens ${maxTokens} (finish_reason "length"); truncated JSON is never repaired: raise max_tokens or simplify the schema`)
      }
      let parsed: unknown
      try {
        parsed = JSON.parse(out.text)
      } catch {
        throw new SovraError('ERR_MODEL_OUTPUT', `structured output is not JSON: ${JSON.stringify(out.text.slice(0, 120))}`)
      }
      const problem = checkJson(parsed, schema)
      if (problem !== undefined) throw new SovraError('ERR_MODEL_OUTPUT', `structured output does not match the schema: ${problem}`)
    }
  } catch (e) {
    const status = e instanceof SovraError ? e.status : 500
    state.metrics.observe(a.cls, 'chat', status, { queueS: a.queueMs / 1000, totalS: 0, tokensIn: 0, tokensOut: 0 })
    log(state, a, 'chat', status, 0, 0, ttftMs)
    a.release()
    sendError(res, e)
    return { cls: a.cls, totalMs: performance.now() - a.started }
  }
  a.release()
  const usage = { prompt_tokens: out.inputTokens, completion_tokens: out.outputTokens, total_tokens: out.inputTokens + out.outputTokens }
  const sovra = meta(state, a, { ttft_ms: ttftMs })
  if (stream) {
    res.write(chunk({}, out.finishReason))
    if (body.stream_options?.include_usage === true) res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage, sovra })}\n\n`)
    res.end('data: [DONE]\n\n')
  } else {
    sendJson(res, 200, {
      id, object: 'chat.completion', created, model,
      choices: [{ index: 0, message: { role: 'assistant', content: out.text }, finish_reason: out.finishReason }],
      usage, sovra,
    }, headers(state))
  }
  const totalMs = performance.now() - a.started
  state.metrics.observe(a.cls, 'chat', 200, { queueS: a.queueMs / 1000, ...(ttftMs === undefined ? {} : { ttftS: ttftMs / 1000 }), totalS: totalMs / 1000, tokensIn: out.inputTokens, tokensOut: out.outputTokens })
  log(state, a, 'chat', 200, out.inputTokens, out.outputTokens, ttftMs)
  return { cls: a.cls, totalMs }
}

/** Serves `POST /v1/embeddings` (OpenAI's shape) and `POST /v1/classify` (label scores per input). */
export async function runInputs(state: ReplicaState, op: 'embed' | 'classify', body: InputsBody, req: IncomingMessage, res: ServerResponse): Promise<Served> {
  const a = await admit(state, op, body, req, res)
  const inputs = typeof body.input === 'string' ? [body.input] : body.input
  try {
    const { engine } = state
    let data: unknown[]
    let tokens: number
    if (op === 'embed') {
      const out = await engine.embed?.(inputs, a.signal, a.slot)
      if (out === undefined) throw new SovraError('ERR_INTERNAL', 'engine has no embed')
      data = out.vectors.map((embedding, index) => ({ object: 'embedding', index, embedding }))
      tokens = out.inputTokens
    } else {
      const out = await engine.classify?.(inputs, a.signal, a.slot)
      if (out === undefined) throw new SovraError('ERR_INTERNAL', 'engine has no classify')
      data = out.results.map((labels, index) => ({ object: 'classification', index, labels }))
      tokens = out.inputTokens
    }
    a.release()
    sendJson(res, 200, { object: 'list', data, model: engine.model.name, usage: { prompt_tokens: tokens, total_tokens: tokens }, sovra: meta(state, a, {}) }, headers(state))
    const totalMs = performance.now() - a.started
    state.metrics.observe(a.cls, op, 200, { queueS: a.queueMs / 1000, totalS: totalMs / 1000, tokensIn: tokens, tokensOut: 0 })
    log(state, a, op, 200, tokens, 0, undefined)
    return { cls: a.cls, totalMs }
  } catch (e) {
    a.release()
    const err = abortReason(a.signal, e)
    const status = err instanceof SovraError ? err.status : 500
    state.metrics.observe(a.cls, op, status, { queueS: 0, totalS: 0, tokensIn: 0, tokensOut: 0 })
    log(state, a, op, status, 0, 0, undefined)
    sendError(res, err)
    return { cls: a.cls, totalMs: performance.now() - a.started }
  }
}

function log(state: ReplicaState, a: Admitted, op: string, status: number, tokensIn: number, tokensOut: number, ttftMs: number | undefined): void {
  state.log.info({
    pool: state.pool.name, replica: state.replica, model_sha256: state.engine.model.sha256, op, class: a.cls, tier: a.tier, status,
    queue_ms: a.queueMs, ttft_ms: ttftMs, total_ms: Math.round(performance.now() - a.started), tokens_in: tokensIn, tokens_out: tokensOut,
  }, 'inference')
}
