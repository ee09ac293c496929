import { randomUUID } from 'node:crypto'

import { SovraError } from '../../runtime/core/errors.ts'
import type { EngineChatOutput } from './engine.ts'
import { checkJson } from './json-check.ts'
import { jsonReply, sseBody, sseError } from './replies.ts'
import type { ReplicaState } from './replica-state.ts'
import { contentText, type ChatBody, type InputsBody } from './requests.ts'
import { schemaProblems } from './schema-check.ts'
import { abortReason, admit, clientGone, finish, meta, sovraHeaders, type Admitted } from './serve-admit.ts'

interface Generation {
  out: EngineChatOutput
  ttftMs: number | undefined
}

/**
 * Serves `POST /v1/chat/completions`: OpenAI's response (or SSE chunks when `stream`), with a `sovra` member
 * carrying pool, replica, model digest and timings. A JSON schema that is malformed or unsatisfiable is refused before
 * admission (400 naming its path); output is checked after generation: a truncated or non-conforming answer is
 * ERR_MODEL_OUTPUT (502), never repaired. A prompt that does not fit the model's context is refused by the engine
 * (400; see EngineChatParams.fitMaxTokens). Errors before the first byte are thrown (the
 * app's error handler answers them); a stream that fails ends with a `data: {"error":...}` event.
 * @param state the loaded replica
 * @param body the parsed request body
 * @param client the request's signal: aborts a queued wait or the generation when the client goes away
 */
export async function runChat(state: ReplicaState, body: ChatBody, client: AbortSignal): Promise<Response> {
  if (body.response_format?.type === 'json_schema') {
    // Before admission: a schema nothing can satisfy is the caller's mistake, not a slot's worth of work.
    const problems = schemaProblems(body.response_format.json_schema.schema, 'response_format.json_schema.schema')
    if (problems.length > 0)
      throw new SovraError('ERR_BAD_REQUEST', `POST /v1/chat/completions: invalid body: ${problems.join('; ')}`)
  }
  const a = await admit(state, 'chat', body, client)
  const id = `chatcmpl-${randomUUID()}`
  const created = Math.floor(Date.now() / 1000)
  const model = state.engine.model.name
  const chunk = (delta: Record<string, unknown>, finish: string | null): string =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
  if (body.stream !== true) {
    const { out, ttftMs } = await generate(state, a, body, undefined)
    const usage = {
      prompt_tokens: out.inputTokens,
      completion_tokens: out.outputTokens,
      total_tokens: out.inputTokens + out.outputTokens,
    }
    const res = jsonReply(
      200,
      {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: out.text }, finish_reason: out.finishReason }],
        usage,
        sovra: meta(state, a, { ttft_ms: ttftMs }),
      },
      sovraHeaders(state),
    )
    succeeded(state, a, out, ttftMs)
    return res
  }
  // The reader cancels when node-server sees the connection close; the request signal covers the same case.
  const sse = sseBody(() => a.abort(clientGone()))
  sse.push(chunk({ role: 'assistant', content: '' }, null))
  const work = generate(state, a, body, (text) => {
    if (text.length > 0) sse.push(chunk({ content: text }, null))
  }).then(
    ({ out, ttftMs }) => {
      const usage = {
        prompt_tokens: out.inputTokens,
        completion_tokens: out.outputTokens,
        total_tokens: out.inputTokens + out.outputTokens,
      }
      sse.push(chunk({}, out.finishReason))
      if (body.stream_options?.include_usage === true)
        sse.push(
          `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage, sovra: meta(state, a, { ttft_ms: ttftMs }) })}\n\n`,
        )
      sse.end('data: [DONE]\n\n')
      succeeded(state, a, out, ttftMs)
    },
    (e: unknown) => sse.end(sseError(e)),
  )
  state.track(work)
  // `transfer-encoding: chunked` makes @hono/node-server write the head and first chunk at once instead of
  // buffering a few reads first (hono's streamSSE sets it for the same reason); Node chunked these before too.
  const headers = {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'transfer-encoding': 'chunked',
    ...sovraHeaders(state),
  }
  return new Response(sse.stream, { status: 200, headers })
}

/** Runs the engine on an admitted chat and checks structured output; on failure records it, frees the slot and throws. */
async function generate(
  state: ReplicaState,
  a: Admitted,
  body: ChatBody,
  onText: ((text: string) => void) | undefined,
): Promise<Generation> {
  const maxTokens = Math.min(body.max_completion_tokens ?? body.max_tokens ?? state.pool.maxTokens, 1 << 20)
  const schema = body.response_format?.type === 'json_schema' ? body.response_format.json_schema.schema : undefined
  let ttftMs: number | undefined
  const first = (): void => {
    ttftMs ??= Math.round(performance.now() - a.started)
  }
  try {
    const out = await state.engine
      .chat?.(
        {
          messages: body.messages.map((m) => ({
            role: m.role === 'developer' ? 'system' : m.role,
            content: contentText(m.content),
          })),
          maxTokens,
          fitMaxTokens: body.max_completion_tokens === undefined && body.max_tokens === undefined,
          temperature: body.temperature ?? 1,
          ...(body.seed === undefined ? {} : { seed: body.seed }),
          ...(body.top_p === undefined ? {} : { topP: body.top_p }),
          ...(schema === undefined ? {} : { jsonSchema: schema }),
          signal: a.signal,
          // Streams need text; otherwise a token callback is enough to time the first token.
          ...(onText === undefined
            ? { onToken: first }
            : {
                onText: (text: string) => {
                  first()
                  onText(text)
                },
              }),
        },
        a.slot,
      )
      .catch((e: unknown) => {
        throw abortReason(a.signal, e)
      })
    if (out === undefined) throw new SovraError('ERR_INTERNAL', 'engine has no chat')
    if (schema !== undefined) checkStructured(out, schema, maxTokens)
    a.release()
    return { out, ttftMs }
  } catch (e) {
    const status = e instanceof SovraError ? e.status : 500
    state.metrics.observe(a.cls, 'chat', status, { queueS: a.queueMs / 1000, totalS: 0, tokensIn: 0, tokensOut: 0 })
    finish(state, a, 'chat', status, { in: 0, out: 0, ttftMs })
    a.release()
    throw e
  }
}

function checkStructured(out: EngineChatOutput, schema: Record<string, unknown>, maxTokens: number): void {
  if (out.finishReason === 'length') {
    throw new SovraError(
      'ERR_MODEL_OUTPUT',
      `structured output truncated at max_tokens ${maxTokens} (finish_reason "length"); truncated JSON is never repaired: raise max_tokens or simplify the schema`,
    )
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(out.text)
  } catch {
    throw new SovraError('ERR_MODEL_OUTPUT', `structured output is not JSON: ${JSON.stringify(out.text.slice(0, 120))}`)
  }
  const problem = checkJson(parsed, schema)
  if (problem !== undefined)
    throw new SovraError('ERR_MODEL_OUTPUT', `structured output does not match the schema: ${problem}`)
}

function succeeded(state: ReplicaState, a: Admitted, out: EngineChatOutput, ttftMs: number | undefined): void {
  const totalMs = performance.now() - a.started
  state.metrics.observe(a.cls, 'chat', 200, {
    queueS: a.queueMs / 1000,
    ...(ttftMs === undefined ? {} : { ttftS: ttftMs / 1000 }),
    totalS: totalMs / 1000,
    tokensIn: out.inputTokens,
    tokensOut: out.outputTokens,
  })
  finish(state, a, 'chat', 200, { in: out.inputTokens, out: out.outputTokens, ttftMs })
}

/**
 * Serves `POST /v1/embeddings` (OpenAI's shape) and `POST /v1/classify` (label scores per input).
 * @param state the loaded replica
 * @param op `embed` or `classify`
 * @param body the parsed request body
 * @param client the request's signal: aborts a queued wait or the engine call when the client goes away
 */
export async function runInputs(
  state: ReplicaState,
  op: 'embed' | 'classify',
  body: InputsBody,
  client: AbortSignal,
): Promise<Response> {
  const a = await admit(state, op, body, client)
  const inputs = typeof body.input === 'string' ? [body.input] : body.input
  const { engine } = state
  let data: unknown[]
  let tokens: number
  try {
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
  } catch (e) {
    a.release()
    const err = abortReason(a.signal, e)
    const status = err instanceof SovraError ? err.status : 500
    state.metrics.observe(a.cls, op, status, { queueS: 0, totalS: 0, tokensIn: 0, tokensOut: 0 })
    finish(state, a, op, status, { in: 0, out: 0, ttftMs: undefined })
    throw err
  }
  a.release()
  const res = jsonReply(
    200,
    {
      object: 'list',
      data,
      model: engine.model.name,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
      sovra: meta(state, a, {}),
    },
    sovraHeaders(state),
  )
  const totalMs = performance.now() - a.started
  state.metrics.observe(a.cls, op, 200, {
    queueS: a.queueMs / 1000,
    totalS: totalMs / 1000,
    tokensIn: tokens,
    tokensOut: 0,
  })
  finish(state, a, op, 200, { in: tokens, out: 0, ttftMs: undefined })
  return res
}
