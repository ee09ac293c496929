import { toJsonSchema } from '@valibot/to-json-schema'

import { SovraError } from '../../core/errors.ts'
import type { Ai, ChatRequest, OutputSchema } from '../../core/ports.ts'
import type { CallHost } from '../define.ts'

interface StandardSchema {
  readonly '~standard': {
    validate(
      value: unknown,
    ):
      { value?: unknown; issues?: ReadonlyArray<{ message: string; path?: ReadonlyArray<unknown> }> } | Promise<unknown>
  }
}

function isStandard(schema: OutputSchema): schema is StandardSchema {
  return typeof schema === 'object' && schema !== null && '~standard' in schema
}

function pathOf(path: ReadonlyArray<unknown> | undefined): string {
  if (path === undefined || path.length === 0) return '$'
  return `$.${path.map((p) => (typeof p === 'object' && p !== null && 'key' in p ? String((p as { key: unknown }).key) : String(p))).join('.')}`
}

/**
 * The isolate side of `env.AI`: chat, embed and classify, each sent to the host, which routes it to a pool
 * replica. A valibot (Standard Schema) `schema` is converted to JSON Schema for the grammar and validates the
 * parsed result again here, so `json` has the schema's output type.
 * @param call sends one call to the host
 * @example
 * const { json } = await env.AI.chat({ model: 'qa', messages, schema: v.object({ approve: v.boolean() }) })
 */
export function aiClient(call: CallHost): Ai {
  return {
    async chat<T>(request: ChatRequest<T>) {
      const { schema, ...rest } = request
      const standard = schema !== undefined && isStandard(schema) ? schema : undefined
      let jsonSchema: Record<string, unknown> | undefined
      if (standard !== undefined) {
        try {
          jsonSchema = toJsonSchema(standard as never, { errorMode: 'throw' }) as Record<string, unknown>
        } catch (e) {
          throw new SovraError(
            'ERR_BAD_REQUEST',
            `schema: this valibot schema has no JSON Schema equivalent for a grammar: ${(e as Error).message}`,
          )
        }
        delete jsonSchema['$schema']
      } else if (schema !== undefined) {
        jsonSchema = schema as Record<string, unknown>
      }
      const result = (await call('chat', [
        { ...rest, ...(jsonSchema === undefined ? {} : { schema: jsonSchema }) },
      ])) as Awaited<ReturnType<Ai['chat']>>
      if (standard !== undefined) {
        const checked = (await standard['~standard'].validate(result.json)) as {
          value?: unknown
          issues?: ReadonlyArray<{ message: string; path?: ReadonlyArray<unknown> }>
        }
        if (checked.issues !== undefined) {
          const first = checked.issues[0]
          throw new SovraError(
            'ERR_MODEL_OUTPUT',
            `model output does not match the schema: ${pathOf(first?.path)}: ${first?.message ?? 'invalid'}`,
          )
        }
        return { ...result, json: checked.value as T }
      }
      return result as Awaited<ReturnType<Ai['chat']>> & { json?: T }
    },
    embed: async (request) => (await call('embed', [request])) as Awaited<ReturnType<Ai['embed']>>,
    classify: async (request) => (await call('classify', [request])) as Awaited<ReturnType<Ai['classify']>>,
  }
}
