import { defineFunction } from 'sovra'

/** What `echo` answers: the request as the function saw it. */
export interface EchoReply {
  method: string
  path: string
  query: Record<string, string | string[]>
  headers: Record<string, string>
  body: string | null
  invocation: { id: string; function: string; version: string; trigger: string }
}

/**
 * Echoes the request back as JSON: method, path, query, headers and body. The smallest useful function, used by
 * the examples, the conformance suite and the benchmark.
 */
export default defineFunction({
  async fetch(request, _env, ctx) {
    const url = new URL(request.url)
    const query: Record<string, string | string[]> = {}
    for (const key of new Set(url.searchParams.keys())) {
      const all = url.searchParams.getAll(key)
      query[key] = all.length === 1 ? (all[0] as string) : all
    }
    const body = request.body === null ? null : await request.text()
    const reply: EchoReply = {
      method: request.method,
      path: url.pathname,
      query,
      headers: Object.fromEntries(request.headers),
      body,
      invocation: { ...ctx.invocation },
    }
    return Response.json(reply)
  },
})
