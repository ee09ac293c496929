import { toJsonSchema } from '@valibot/to-json-schema'

import { SovraError } from '../core/errors.ts'
import type { Ai, AiCaller, AiService, ChatRequest, OutputSchema } from '../core/ports.ts'
import type { CallHost } from './bucket.ts'

const METHODS = ['chat', 'embed', 'classify'] as const
type Method = (typeof METHODS)[number]

interface StandardSchema {
  readonly '~standard': { validate(value: unknown): { value?: unknown; issues?: ReadonlyArray<{ message: string; path?: ReadonlyArray<unknown> }> } | Promise<unknown> }
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
          throw new SovraError('ERR_BAD_REQUEST', `schema: this valibot schema has no JSON Schema equivalent for a grammar: ${(e as Error).message}`)
        }
        delete jsonSchema['$schema']
      } else if (schema !== undefined) {
        jsonSchema = schema as Record<string, unknown>
      }
      const result = (await call('chat', [{ ...rest, ...(jsonSchema === undefined ? {} : { schema: jsonSchema }) }])) as Awaited<ReturnType<Ai['chat']>>
      if (standard !== undefined) {
        const checked = (await standard['~standard'].validate(result.json)) as { value?: unknown; issues?: ReadonlyArray<{ message: string; path?: ReadonlyArray<unknown> }> }
        if (checked.issues !== undefined) {
          const first = checked.issues[0]
          throw new SovraError('ERR_MODEL_OUTPUT', `model output does not match the schema: ${pathOf(first?.path)}: ${first?.message ?? 'invalid'}`)
        }
        return { ...result, json: checked.value as T }
      }
      return result as Awaited<ReturnType<Ai['chat']>> & { json?: T }
    },
    embed: async (request) => (await call('embed', [request])) as Awaited<ReturnType<Ai['embed']>>,
    classify: async (request) => (await call('classify', [request])) as Awaited<ReturnType<Ai['classify']>>,
  }
}

/**
 * The host side: runs one `env.AI` call through the AI service (the router), as `caller`.
 * @param service the router
 * @param caller the calling function and its tier
 * @param method chat, embed or classify
 * @param args the call's arguments (one request object)
 */
export async function serveAiCall(service: AiService, caller: AiCaller, method: string, args: unknown[]): Promise<{ value: unknown; transfer: ArrayBuffer[] }> {
  if (!(METHODS as readonly string[]).includes(method)) {
    throw new SovraError('ERR_BAD_REQUEST', `unknown AI method ${JSON.stringify(method)}; valid: ${METHODS.join(', ')}`)
  }
  const request = args[0]
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    throw new SovraError('ERR_BAD_REQUEST', `env.AI.${method}: expected one request object, received ${request === null ? 'null' : typeof request}`)
  }
  return { value: await service.call(method as Method, request as Record<string, unknown>, caller), transfer: [] }
}

/**
 * A `CallHost` over HTTP, for isolates that are not threads of a host (OpenWhisk actions): each call is
 * `POST <url>/_sovra/ai/<method>` with `{function, request}` and a bearer token; the router behind it (the gateway)
 * takes the caller's tier and timeout from its own copy of the config.
 * @param url the router's base URL (the gateway)
 * @param token the shared bearer token (secret AI_ROUTER_TOKEN)
 * @param fn the calling function's name
 */
export function httpCallHost(url: string, token: string, fn: string): CallHost {
  const base = url.replace(/\/+$/, '')
  return async (method, args) => {
    const res = await fetch(`${base}/_sovra/ai/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ function: fn, request: args[0] }),
    }).catch((e: unknown) => {
      throw new SovraError('ERR_UPSTREAM', `AI router ${base} unreachable: ${(e as Error).message}`)
    })
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown> & { error?: { code?: string; message?: string } }
    if (!res.ok) {
      const code = (body.error?.code ?? 'ERR_UPSTREAM') as ConstructorParameters<typeof SovraError>[0]
      throw new SovraError(code, body.error?.message ?? `AI router answered ${res.status}`, { status: res.status })
    }
    return body
  }
}
