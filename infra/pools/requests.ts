import * as v from 'valibot'

import { SovraError } from '../../runtime/core/errors.ts'

/** Fields sovra adds to OpenAI-style bodies (as vLLM accepts extra parameters): routing and admission. */
const SOVRA_FIELDS = {
  tier: v.optional(v.string()),
  class: v.optional(v.picklist(['interactive', 'batch'])),
  deadline_ms: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(3_600_000))),
  legal_basis: v.optional(v.pipe(v.string(), v.minLength(1))),
}

const TextPart = v.object({ type: v.literal('text'), text: v.string() })

/** `POST /v1/chat/completions` body: OpenAI's shape plus sovra's fields; other OpenAI fields are ignored. */
export const ChatBodySchema = v.looseObject({
  model: v.optional(v.string()),
  messages: v.pipe(
    v.array(
      v.object({
        role: v.picklist(['system', 'user', 'assistant', 'developer']),
        content: v.union([v.string(), v.array(TextPart)]),
      }),
    ),
    v.minLength(1, 'at least one message'),
  ),
  max_tokens: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  max_completion_tokens: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  temperature: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(2))),
  top_p: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(1))),
  seed: v.optional(v.pipe(v.number(), v.integer())),
  stream: v.optional(v.boolean()),
  stream_options: v.optional(v.looseObject({ include_usage: v.optional(v.boolean()) })),
  response_format: v.optional(
    v.variant('type', [
      v.object({ type: v.literal('text') }),
      v.object({
        type: v.literal('json_schema'),
        json_schema: v.looseObject({
          name: v.optional(v.string()),
          schema: v.record(v.string(), v.unknown()),
          strict: v.optional(v.boolean()),
        }),
      }),
    ]),
  ),
  ...SOVRA_FIELDS,
})
export type ChatBody = v.InferOutput<typeof ChatBodySchema>

const Inputs = v.union([
  v.pipe(v.string(), v.minLength(1)),
  v.pipe(v.array(v.string()), v.minLength(1, 'at least one input'), v.maxLength(2048)),
])

/** `POST /v1/embeddings` body. */
export const EmbeddingsBodySchema = v.looseObject({ model: v.optional(v.string()), input: Inputs, ...SOVRA_FIELDS })
/** `POST /v1/classify` body. */
export const ClassifyBodySchema = EmbeddingsBodySchema
export type InputsBody = v.InferOutput<typeof EmbeddingsBodySchema>

/**
 * Validates a parsed body, throwing one ERR_BAD_REQUEST that lists every problem with its path and the value.
 * @param schema the body schema
 * @param body the parsed JSON
 * @param what the endpoint, for the message
 */
export function parseBody<S extends v.GenericSchema>(schema: S, body: unknown, what: string): v.InferOutput<S> {
  const r = v.safeParse(schema, body)
  if (r.success) return r.output
  const problems = r.issues.map((i) => {
    const path = v.getDotPath(i) ?? '(body)'
    return `${path}: ${i.message}`
  })
  throw new SovraError('ERR_BAD_REQUEST', `${what}: invalid body: ${problems.join('; ')}`)
}

/** The text of a message's content (a string or OpenAI's text parts). */
export function contentText(content: string | Array<{ type: 'text'; text: string }>): string {
  return typeof content === 'string' ? content : content.map((p) => p.text).join('')
}
