import { SovraError } from '../../../runtime/core/errors.ts'
import type { Engine, EngineChatOutput, EngineChatParams, EngineClassifyOutput, EngineEmbedOutput } from '../engine.ts'

/** How to reach an OpenAI-compatible provider. */
export interface ExternalEngineOptions {
  /** Base URL ending before `/chat/completions` (e.g. `https://llm.example/v1`). */
  url: string
  apiKey?: string
  /** The provider's model name, sent as `model`. */
  remoteModel?: string
  slots: number
  /** Extra headers (e.g. a tenant header). */
  headers?: Record<string, string>
}

interface OpenAiChat {
  choices?: Array<{ message?: { content?: string | null }; finish_reason?: string }>
  usage?: { prompt_tokens?: number; completion_tokens?: number }
}

/**
 * An engine that forwards to any OpenAI-compatible endpoint (vLLM, a hosted API, another sovra pool). No local
 * model: the digest is `external:<url>#<model>`, and the replica still applies tier, legal basis and admission.
 * @param options base URL, key, model name and the concurrency to allow
 */
export function createExternalEngine(options: ExternalEngineOptions): Engine {
  const base = options.url.replace(/\/+$/, '')
  const name = options.remoteModel ?? 'default'

  async function post(path: string, body: Record<string, unknown>, signal: AbortSignal): Promise<Response> {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` }),
        ...options.headers,
      },
      body: JSON.stringify({ ...(options.remoteModel === undefined ? {} : { model: options.remoteModel }), ...body }),
      signal,
    }).catch((e: unknown) => {
      if (signal.aborted) throw signal.reason
      throw new SovraError('ERR_UPSTREAM', `external provider ${base}${path} unreachable: ${(e as Error).message}`)
    })
    if (!res.ok) {
      const text = await res.text().catch(() => '')
      throw new SovraError(
        'ERR_UPSTREAM',
        `external provider ${base}${path} answered ${res.status}: ${text.slice(0, 200)}`,
      )
    }
    return res
  }

  async function chat(p: EngineChatParams): Promise<EngineChatOutput> {
    const body: Record<string, unknown> = {
      messages: p.messages,
      max_tokens: p.maxTokens,
      temperature: p.temperature,
      ...(p.seed === undefined ? {} : { seed: p.seed }),
      ...(p.topP === undefined ? {} : { top_p: p.topP }),
      ...(p.jsonSchema === undefined
        ? {}
        : {
            response_format: {
              type: 'json_schema',
              json_schema: { name: 'output', schema: p.jsonSchema, strict: true },
            },
          }),
    }
    if (p.onText === undefined) {
      const json = (await (await post('/chat/completions', body, p.signal)).json()) as OpenAiChat
      const choice = json.choices?.[0]
      const text = choice?.message?.content ?? ''
      return {
        text,
        finishReason: choice?.finish_reason === 'length' ? 'length' : 'stop',
        inputTokens: json.usage?.prompt_tokens ?? 0,
        outputTokens: json.usage?.completion_tokens ?? 0,
      }
    }
    const res = await post(
      '/chat/completions',
      { ...body, stream: true, stream_options: { include_usage: true } },
      p.signal,
    )
    let text = ''
    let finish: 'stop' | 'length' = 'stop'
    let usage = { prompt_tokens: 0, completion_tokens: 0 }
    let buffer = ''
    const decoder = new TextDecoder()
    for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(bytes, { stream: true })
      let nl: number
      while ((nl = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 2)
        const data = event
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trim())
          .join('')
        if (data === '' || data === '[DONE]') continue
        const j = JSON.parse(data) as {
          choices?: Array<{ delta?: { content?: string }; finish_reason?: string | null }>
          usage?: typeof usage
          error?: { message?: string }
        }
        if (j.error !== undefined)
          throw new SovraError(
            'ERR_UPSTREAM',
            `external provider stream error: ${j.error.message ?? JSON.stringify(j.error)}`,
          )
        const c = j.choices?.[0]
        if (c?.delta?.content) {
          text += c.delta.content
          p.onText(c.delta.content)
        }
        if (c?.finish_reason === 'length') finish = 'length'
        if (j.usage) usage = j.usage
      }
    }
    return { text, finishReason: finish, inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens }
  }

  return {
    kind: 'external',
    model: { path: base, sha256: `external:${base}#${name}`, bytes: 0, name },
    slots: options.slots,
    operations: new Set(['chat', 'embed', 'classify']),
    chat,
    async embed(texts, signal): Promise<EngineEmbedOutput> {
      const json = (await (await post('/embeddings', { input: texts }, signal)).json()) as {
        data: Array<{ index: number; embedding: number[] }>
        usage?: { prompt_tokens?: number }
      }
      const vectors = [...json.data].sort((a, b) => a.index - b.index).map((d) => d.embedding)
      return { vectors, inputTokens: json.usage?.prompt_tokens ?? 0 }
    },
    async classify(texts, signal): Promise<EngineClassifyOutput> {
      const json = (await (await post('/classify', { input: texts }, signal)).json()) as {
        data: Array<{ index: number; labels: Array<{ label: string; score: number }> }>
        usage?: { prompt_tokens?: number }
      }
      return {
        results: [...json.data].sort((a, b) => a.index - b.index).map((d) => d.labels),
        inputTokens: json.usage?.prompt_tokens ?? 0,
      }
    },
    async close() {},
  }
}
