import { Hono } from 'hono'

import { SovraError } from '../../core/errors.ts'
import type { AiService } from '../../core/ports.ts'
import type { Project } from '../../config/resolve.ts'
import { checkBearer } from '../../auth/bearer.ts'
import { serveAiCall } from '../../bindings/ai/serve.ts'
import type { AdminEnv } from '../app/host-app.ts'

/**
 * `/_sovra/ai/<op>`: the router behind OpenWhisk actions' `env.AI` (`POST {function, request}` with the bearer
 * AI_ROUTER_TOKEN). The calling function's tier and timeout come from this gateway's own copy of the config, never
 * from the caller; the call runs through the same host side as an isolate's env.AI call (runtime/bindings/ai).
 * @param project the project (which functions bind AI)
 * @param ai the router and the token actions send; none: every call answers 404 saying how to enable it
 */
export function aiAdmin(project: Project, ai: { service: AiService; token: string } | undefined): Hono<AdminEnv> {
  const byName = new Map(project.functions.map((f) => [f.name, f]))
  const app = new Hono<AdminEnv>()
  app.all('/ai/:op', async (c) => {
    const op = c.req.param('op')
    if (ai === undefined)
      throw new SovraError(
        'ERR_NOT_FOUND',
        'this gateway runs no AI router: add [[pools]] to the config and set the secret AI_ROUTER_TOKEN',
      )
    if (c.req.method !== 'POST' || !['chat', 'embed', 'classify'].includes(op))
      throw new SovraError(
        'ERR_NOT_FOUND',
        `no route ${c.req.method} /_sovra/ai/${op}; valid: POST /_sovra/ai/chat | embed | classify`,
      )
    checkBearer(c.req.header('authorization'), ai.token, {
      secret: 'AI_ROUTER_TOKEN',
      disabled: 'the AI router is disabled: set the secret AI_ROUTER_TOKEN',
    })
    const text = await c.req.text()
    if (text.length > 16 * 1024 * 1024)
      throw new SovraError(
        'ERR_BODY_TOO_LARGE',
        `an AI router call is at most 16 MiB; received ${text.length} characters`,
      )
    let body: { function?: string; request?: unknown }
    try {
      body = JSON.parse(text) as typeof body
    } catch {
      throw new SovraError('ERR_BAD_REQUEST', 'expected a JSON body {"function": "<name>", "request": {...}}')
    }
    const fn = byName.get(String(body.function))
    if (fn === undefined || !fn.bindings.some((b) => b.type === 'ai'))
      throw new SovraError(
        'ERR_TIER_DENIED',
        `function ${JSON.stringify(body.function)} does not bind AI in this config`,
      )
    const { value } = await serveAiCall(
      ai.service,
      { function: fn.name, tier: fn.tier, timeoutMs: fn.limits.timeout_ms },
      op,
      [body.request],
    )
    return c.json(value as Record<string, unknown>)
  })
  return app
}
