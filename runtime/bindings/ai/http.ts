import { SovraError } from '../../core/errors.ts'
import type { CallHost } from '../define.ts'

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
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown> & {
      error?: { code?: string; message?: string }
    }
    if (!res.ok) {
      const code = (body.error?.code ?? 'ERR_UPSTREAM') as ConstructorParameters<typeof SovraError>[0]
      throw new SovraError(code, body.error?.message ?? `AI router answered ${res.status}`, { status: res.status })
    }
    return body
  }
}
