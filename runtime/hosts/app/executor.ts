import type { IncomingMessage, ServerResponse } from 'node:http'

import type { FunctionConfig } from '../../config/schema.ts'
import type { Authenticated } from '../../auth/authenticate.ts'
import type { RequestHead } from '../../isolate/pool.ts'
import { headFromIncoming, headFromRequest } from './request.ts'

/** What @hono/node-server hands an app: the Node request and response (absent for in-memory requests). */
export interface NodeEnv {
  incoming?: IncomingMessage | undefined
  outgoing?: ServerResponse | undefined
}

/** One function request, routed and authenticated, as an executor receives it. */
export interface ExecutorCall {
  fn: FunctionConfig
  /** The Web request (lazy under @hono/node-server: its body is read through `head`, not here). */
  request: Request
  url: string
  path: string
  env: NodeEnv | undefined
  /** The verified caller (or the anonymous principal), with the token's claims. */
  caller: Authenticated
  invocationId: string
}

/**
 * Runs functions for a host: the isolate pools on the embedded host, a blocking invoke of an OpenWhisk action on the
 * gateway. The host app does routing, authentication and error mapping; the executor does the rest.
 */
export interface Executor {
  /** Runs the function's `fetch` for one request. */
  fetch(call: ExecutorCall): Promise<Response>
  /** Readiness, with a word per function. */
  health(): { ready: boolean; functions: Record<string, unknown> }
  /** What `GET /_sovra/functions` lists. */
  describe(): unknown[]
}

/**
 * Reads a request's head and body within the function's body limit (413 before the body is buffered when
 * content-length says so); a verified bearer token is dropped, so functions get the principal, never the credential.
 * @param call the routed, authenticated request
 */
export async function readHead(call: ExecutorCall): Promise<RequestHead> {
  const limit = call.fn.limits.max_body_bytes
  const incoming = call.env?.incoming
  const head =
    incoming === undefined
      ? await headFromRequest(call.request, limit, call.fn.name)
      : await headFromIncoming(incoming, call.url, limit, call.fn.name)
  if (call.caller.token === true) head.headers = withoutHeader(head.headers, 'authorization')
  return head
}

/**
 * A request header from a head's flat list.
 * @param head the head
 * @param name a lower-case header name
 */
export function headerOf(head: Pick<RequestHead, 'headers'>, name: string): string | undefined {
  for (let i = 0; i < head.headers.length; i += 2)
    if (head.headers[i]?.toLowerCase() === name) return head.headers[i + 1]
  return undefined
}

/**
 * What version pins match on: `tenant` (the verified principal's tenant, else the `x-sovra-tenant` header: a caller
 * with a verified tenant cannot pick another tenant's pin), `header:<name>`, `claim:<name>`.
 * @param head the request head
 * @param caller the authenticated caller
 */
export function callerAttributes(
  head: Pick<RequestHead, 'headers'>,
  caller: Authenticated,
): Record<string, string | undefined> {
  const attrs: Record<string, string | undefined> = {}
  for (let i = 0; i < head.headers.length; i += 2)
    attrs[`header:${head.headers[i]?.toLowerCase()}`] = head.headers[i + 1]
  for (const [k, v] of Object.entries(caller.claims ?? {})) if (typeof v === 'string') attrs[`claim:${k}`] = v
  attrs['tenant'] = caller.principal.tenant ?? attrs['header:x-sovra-tenant']
  return attrs
}

function withoutHeader(headers: readonly string[], name: string): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2)
    if (headers[i]?.toLowerCase() !== name) out.push(headers[i] as string, headers[i + 1] as string)
  return out
}
