import * as v from 'valibot'
import { defineFunction, parseJson, type Ai } from 'sovra'

/** The bindings `ask` uses. */
export interface AskEnv {
  AI: Ai
}

/** `POST /v1/ask` body. */
export const AskSchema = v.object({
  question: v.pipe(v.string(), v.minLength(1), v.maxLength(4000)),
  /** Ask for a structured triage instead of free text. */
  triage: v.optional(v.boolean()),
  max_tokens: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(512))),
})

/** The structured answer of a triage request (enforced by a grammar in the pool, validated again here). */
export const TriageSchema = v.object({
  answerable: v.boolean(),
  risk: v.picklist(['low', 'medium', 'high']),
  needs_human: v.boolean(),
})

/** `POST /v1/embed` and `POST /v1/classify` body. */
export const TextsSchema = v.object({
  input: v.pipe(v.array(v.pipe(v.string(), v.minLength(1))), v.minLength(1), v.maxLength(256)),
})

/**
 * The inference demo: `POST /v1/ask` chats with the `qa` pool (optionally as a structured triage),
 * `POST /v1/embed` embeds texts with the `embed` pool, `POST /v1/classify` scores them with the `classify` pool.
 * Every answer carries the pool, replica, model digest, usage and timings the router reports.
 */
export default defineFunction<AskEnv>({
  async fetch(request, env) {
    const path = new URL(request.url).pathname
    if (request.method !== 'POST')
      return Response.json({ error: { code: 'ERR_BAD_REQUEST', message: `use POST ${path}` } }, { status: 405 })
    if (path === '/v1/embed' || path === '/v1/classify') {
      // A body that is not JSON or does not match is a 400 listing every issue with its path (ERR_BAD_REQUEST).
      const body = await parseJson(request, TextsSchema)
      const result =
        path === '/v1/embed'
          ? await env.AI.embed({ model: 'embed', input: body.input })
          : await env.AI.classify({ model: 'classify', input: body.input })
      return Response.json(result)
    }
    const body = await parseJson(request, AskSchema)
    const messages = [
      { role: 'system' as const, content: 'You answer questions about internal policy documents.' },
      { role: 'user' as const, content: body.question },
    ]
    // The demo model tokenizes JSON mostly byte by byte: a triage object takes ~60 tokens.
    const max_tokens = body.max_tokens ?? (body.triage === true ? 256 : 64)
    const result =
      body.triage === true
        ? await env.AI.chat({ model: 'qa', messages, schema: TriageSchema, max_tokens, temperature: 0 })
        : await env.AI.chat({ model: 'qa', messages, max_tokens })
    return Response.json(result)
  },
})
