import { TEXT_TYPES } from '../../runtime/hosts/openwhisk/params.ts'
import { startActionProxy } from './action-proxy.ts'

/**
 * Turns a request into the raw-http web action parameters OpenWhisk passes (docs/platform-notes.md): lower-case `__ow_method`,
 * `__ow_path`, `__ow_query` without `?`, `__ow_headers` (with `host`), and the body base64 in `__ow_body`.
 * @param request the caller's request
 */
export async function webParams(request: Request): Promise<Record<string, unknown>> {
  const url = new URL(request.url)
  const body = request.body === null ? undefined : Buffer.from(await request.arrayBuffer()).toString('base64')
  const headers: Record<string, string> = { host: url.host }
  request.headers.forEach((v, k) => void (headers[k] = v))
  return {
    __ow_method: request.method.toLowerCase(),
    __ow_path: url.pathname,
    __ow_query: url.search.slice(1),
    __ow_headers: headers,
    ...(body === undefined ? {} : { __ow_body: body }),
  }
}

/**
 * What the OpenWhisk controller makes of a web action's result: `{statusCode, headers, body}` (or the same under
 * `error`) becomes the HTTP response; text content types travel as text, the rest base64 (the runtime's own
 * TEXT_TYPES, so this side decodes exactly what the entry encoded).
 * @param result the action's result
 */
export function webResponse(result: Record<string, unknown>): Response {
  const r = (result['error'] ?? result) as {
    statusCode?: number
    headers?: Record<string, string | string[]>
    body?: string
  }
  const headers = new Headers()
  for (const [k, v] of Object.entries(r.headers ?? {}))
    for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one)
  const body =
    r.body === undefined
      ? null
      : TEXT_TYPES.test(headers.get('content-type') ?? '')
        ? r.body
        : Buffer.from(r.body, 'base64')
  return new Response(body, { status: r.statusCode ?? 200, headers })
}

/** One action proxy per action name, started and initialised on first use. */
export interface ActionContainers {
  /**
   * Runs an action's code in its container (started and `/init`ed with `code` on first use, even when calls arrive
   * together) and answers the proxy's `/run` result.
   * @param name the action name (one container each)
   * @param code the action's CommonJS code (entry `main`)
   * @param value the action's params
   * @param timeoutMs the action's time limit: the deadline the invoker would set (`__OW_DEADLINE`)
   */
  run(
    name: string,
    code: () => string,
    value: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<Record<string, unknown>>
  close(): Promise<void>
}

/**
 * Creates {@link ActionContainers}: what an OpenWhisk invoker does for a blocking activation, on 127.0.0.1 with
 * the action proxy of test/support/action-proxy.ts (one process per action, a fresh activation id per run).
 */
export function actionContainers(): ActionContainers {
  const started = new Map<string, Promise<{ url: string; close(): Promise<void> }>>()
  let seq = 0
  return {
    async run(name, code, value, timeoutMs) {
      let starting = started.get(name)
      if (starting === undefined) {
        starting = startActionProxy().then(async (p) => {
          const init = await fetch(`${p.url}/init`, {
            method: 'POST',
            body: JSON.stringify({ value: { name, main: 'main', code: code(), binary: false, env: {} } }),
          })
          const answer = await init.text()
          if (init.status !== 200 || answer !== '{"OK":true}')
            throw new Error(`init of action ${name} failed: ${init.status} ${answer}`)
          return p
        })
        started.set(name, starting)
      }
      const proxy = await starting
      const res = await fetch(`${proxy.url}/run`, {
        method: 'POST',
        body: JSON.stringify({
          value,
          activation_id: `act-${++seq}-${Math.random().toString(16).slice(2, 10)}`,
          deadline: String(Date.now() + timeoutMs),
          action_name: `/_/${name}`,
          namespace: '_',
        }),
      })
      const text = await res.text()
      if (res.status !== 200) throw new Error(`run of action ${name} failed: ${res.status} ${text}`)
      return JSON.parse(text) as Record<string, unknown>
    },
    async close() {
      await Promise.all([...started.values()].map(async (p) => (await p.catch(() => undefined))?.close()))
    },
  }
}
