import type {
  ChatHistoryItem,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaGrammar,
  LlamaModel,
} from 'node-llama-cpp'

import { SovraError } from '../../../runtime/core/errors.ts'
import type { Engine, EngineChatOutput, EngineChatParams } from '../engine.ts'
import { describeModelFile } from '../model-file.ts'

/** GPU choice for a llama replica: `auto` picks the best available backend; `false` forces the CPU. */
export type LlamaGpu = 'auto' | 'cuda' | 'vulkan' | 'metal' | false

/** How to load a llama replica. */
export interface LlamaEngineOptions {
  modelPath: string
  /** CPU threads; always set it (node-llama-cpp's default oversubscribed a 2-core machine by 1000x, docs/platform-notes.md). */
  threads: number
  /** Parallel sequences in one context: the replica's slots. */
  slots: number
  gpu?: LlamaGpu
  /** Layers to offload to the GPU; undefined lets node-llama-cpp decide. */
  gpuLayers?: number
  /** Context window per sequence; defaults to min(4096, the model's training context). */
  contextSize?: number
  /**
   * The last N slots run in a context of their own (its own threads and decode batches): the interactive reserve.
   * Sharing one context, a batch load makes every interactive token wait for a decode step of all sequences.
   */
  reservedSlots?: number
}

const GRAMMAR_CACHE_MAX = 32

function toHistory(params: EngineChatParams): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = params.messages.map((m) => {
    if (m.role === 'system') return { type: 'system', text: m.content }
    if (m.role === 'user') return { type: 'user', text: m.content }
    return { type: 'model', response: [m.content] }
  })
  history.push({ type: 'model', response: [] })
  return history
}

/**
 * The max tokens a chat may generate in a context of `contextSize` tokens: the caller's, when prompt and answer fit;
 * the room left, when max_tokens was the pool's default. Refuses (400) rather than letting node-llama-cpp shift the
 * context, which silently drops the start of the conversation (a 200k-character prompt on a 2,048-token context was
 * answered 200 with a prompt it never read). Ref: OpenAI and vLLM refuse such requests with 400 as well.
 * @param promptTokens the rendered prompt's tokens
 * @param params the chat's max tokens and whether they may be lowered
 * @param contextSize the sequence's context in tokens
 */
export function fitContext(
  promptTokens: number,
  params: Pick<EngineChatParams, 'maxTokens' | 'fitMaxTokens'>,
  contextSize: number,
): number {
  const room = contextSize - promptTokens
  if (params.fitMaxTokens === true && room >= 1) return Math.min(params.maxTokens, room)
  if (params.fitMaxTokens !== true && params.maxTokens <= room) return params.maxTokens
  const details = { prompt_tokens: promptTokens, max_tokens: params.maxTokens, context_tokens: contextSize }
  if (room < 1) {
    const fit = params.fitMaxTokens === true
    const maxPrompt = contextSize - (fit ? 1 : params.maxTokens)
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `messages: the prompt is ${promptTokens} tokens, over the model's context of ${contextSize} tokens ` +
        `(max_tokens ${params.maxTokens}${fit ? ', the pool default' : ''}); valid: ` +
        (maxPrompt >= 1
          ? `a prompt of at most ${maxPrompt} tokens${fit ? '' : ` with max_tokens ${params.maxTokens}`}`
          : `max_tokens under ${contextSize} and a prompt that fits beside it`),
      { details },
    )
  }
  throw new SovraError(
    'ERR_BAD_REQUEST',
    `max_tokens: the prompt is ${promptTokens} tokens and max_tokens is ${params.maxTokens}, together ` +
      `${promptTokens + params.maxTokens}, over the model's context of ${contextSize} tokens; valid: max_tokens ` +
      `at most ${room} with this prompt`,
    { details },
  )
}

/**
 * Loads a GGUF model with node-llama-cpp 3.21.1 (imported lazily): one context with `slots` sequences, each slot
 * one sequence, so N requests decode in the same batches. JSON-schema output is enforced with a grammar.
 * @param options model file, threads, slots and GPU settings
 * @example
 * const engine = await loadLlamaEngine({ modelPath: 'models/qa.gguf', threads: 2, slots: 2 })
 * const out = await engine.chat!({ messages: [{ role: 'user', content: 'hi' }], maxTokens: 16, temperature: 0, signal }, 0)
 */
export async function loadLlamaEngine(options: LlamaEngineOptions): Promise<Engine> {
  const model = await describeModelFile(options.modelPath)
  const { getLlama, LlamaChat, LlamaLogLevel } = await import('node-llama-cpp')
  let llama: Llama
  try {
    llama = await getLlama({
      gpu: options.gpu ?? false,
      build: 'never',
      maxThreads: options.threads,
      logLevel: LlamaLogLevel.error,
    })
  } catch (e) {
    throw new SovraError(
      'ERR_CONFIG',
      `llama engine: no usable prebuilt binary for gpu ${JSON.stringify(options.gpu ?? false)}: ${(e as Error).message}. Valid gpu values: "auto", "cuda", "vulkan", false`,
      { cause: e },
    )
  }
  let loaded: LlamaModel
  const contexts: LlamaContext[] = []
  const reserved = Math.max(0, Math.min(options.slots - 1, options.reservedSlots ?? 0))
  try {
    loaded = await llama.loadModel({
      modelPath: model.path,
      ...(options.gpuLayers === undefined ? {} : { gpuLayers: options.gpuLayers }),
    })
    const contextSize = options.contextSize ?? Math.min(4096, loaded.trainContextSize)
    for (const sequences of reserved > 0 ? [options.slots - reserved, reserved] : [options.slots]) {
      contexts.push(await loaded.createContext({ contextSize, sequences, threads: options.threads }))
    }
  } catch (e) {
    for (const c of contexts) await c.dispose().catch(() => undefined)
    await llama.dispose().catch(() => undefined)
    throw new SovraError(
      'ERR_CONFIG',
      `llama engine: model ${JSON.stringify(model.path)} failed to load: ${(e as Error).message}`,
      { cause: e },
    )
  }
  const sequences: LlamaContextSequence[] = []
  for (const context of contexts) {
    for (let i = 0; i < context.totalSequences; i++) sequences.push(context.getSequence())
  }
  // One LlamaChat per slot, reused: building one per request showed up as per-request overhead.
  const chats = sequences.map((contextSequence) => new LlamaChat({ contextSequence, autoDisposeSequence: false }))
  const grammars = new Map<string, Promise<LlamaGrammar>>()

  function grammarFor(schema: Record<string, unknown>): Promise<LlamaGrammar> {
    const key = JSON.stringify(schema)
    let g = grammars.get(key)
    if (g === undefined) {
      // node-llama-cpp's schema type is narrower than JSON Schema; unsupported keywords fail here with its message.
      g = llama.createGrammarForJsonSchema(schema as never).catch((e: unknown) => {
        grammars.delete(key)
        throw new SovraError(
          'ERR_BAD_REQUEST',
          `response_format.json_schema: not supported by the llama grammar: ${(e as Error).message}`,
        )
      })
      if (grammars.size >= GRAMMAR_CACHE_MAX) grammars.delete(grammars.keys().next().value as string)
      grammars.set(key, g)
    }
    return g
  }

  async function chat(params: EngineChatParams, slot: number): Promise<EngineChatOutput> {
    const sequence = sequences[slot]
    const session = chats[slot]
    if (sequence === undefined || session === undefined)
      throw new SovraError('ERR_INTERNAL', `llama engine: slot ${slot} out of range 0..${options.slots - 1}`)
    const grammar = params.jsonSchema === undefined ? undefined : await grammarFor(params.jsonSchema)
    const history = toHistory(params)
    // OpenAI's prompt_tokens counts the whole prompt, cached prefix included (~0.4 ms to render and tokenize here).
    const inputTokens = session.chatWrapper
      .generateContextState({ chatHistory: history })
      .contextText.tokenize(loaded.tokenizer).length
    const maxTokens = fitContext(inputTokens, params, sequence.contextSize)
    const before = sequence.tokenMeter.getState()
    const res = await session.generateResponse(history, {
      maxTokens,
      temperature: params.temperature,
      ...(params.seed === undefined ? {} : { seed: params.seed }),
      ...(params.topP === undefined ? {} : { topP: params.topP }),
      ...(grammar === undefined ? {} : { grammar }),
      signal: params.signal,
      ...(params.onText === undefined ? {} : { onTextChunk: params.onText }),
      ...(params.onToken === undefined ? {} : { onToken: params.onToken }),
    })
    const used = sequence.tokenMeter.diff(before)
    return {
      text: res.response,
      finishReason: res.metadata.stopReason === 'maxTokens' ? 'length' : 'stop',
      inputTokens,
      outputTokens: used.usedOutputTokens,
    }
  }

  return {
    kind: 'llama',
    model,
    slots: options.slots,
    operations: new Set(['chat']),
    chat,
    async close() {
      for (const c of chats) c.dispose({ disposeSequence: false })
      for (const c of contexts) await c.dispose()
      await loaded.dispose()
      await llama.dispose()
    },
  }
}
