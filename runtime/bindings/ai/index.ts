import * as v from 'valibot'

import { SovraError } from '../../core/errors.ts'
import type { AiService } from '../../core/ports.ts'
import { show } from '../../config/diagnostics.ts'
import { defineBinding, ENV_NAME } from '../define.ts'
import { aiClient } from './client.ts'
import { serveAiCall } from './serve.ts'

declare module '../define.ts' {
  interface HostServices {
    /** The inference router over the host's pools. */
    ai?: AiService | undefined
  }
}

/** The inference binding: `env[name]` routes chat, embed and classify calls to the inference pools. */
export const AiBindingSchema = v.object({
  type: v.literal('ai'),
  name: v.pipe(v.string(), v.regex(ENV_NAME, 'a JavaScript identifier for env (e.g. "AI")')),
})
export type AiBinding = v.InferOutput<typeof AiBindingSchema>

/** The inference binding (`[ai] binding = "AI"`, or a `bindings` entry `{ type = "ai", name = "AI" }`). */
export const ai = defineBinding({
  type: 'ai',
  schema: AiBindingSchema,
  resolve(worker, native, ctx) {
    const out: AiBinding[] = [...native]
    const name = worker.ai?.binding
    if (name !== undefined) {
      if (!ENV_NAME.test(name))
        ctx.error(ctx.at('ai.binding'), `expected a JavaScript identifier for env (e.g. "AI"), received ${show(name)}`)
      else out.push({ type: 'ai', name })
    }
    if (out.length > 0 && ctx.pools.length === 0) {
      ctx.warn(
        ctx.at('ai'),
        `function ${show(worker.name)} binds ${out.map((b) => b.name).join(', ')} but the config declares no [[pools]]; every call will fail`,
      )
    }
    return out
  },
  client: (call) => aiClient(call),
  serve(spec, services, caller) {
    const service = services.ai
    if (service === undefined) {
      throw new SovraError(
        'ERR_CONFIG',
        `function "${caller.function}" binds ${spec.name} ([ai] binding) but this host runs no inference pools; add [[pools]] to the config`,
      )
    }
    return (method, args, call) =>
      serveAiCall(
        service,
        call.invocationId === undefined ? caller : { ...caller, invocationId: call.invocationId },
        method,
        args,
      )
  },
  // The `ai call` log line names the invocation that made the call (`sovra logs --invocation`); a call costs far
  // more than tracking the invocation does.
  perCaller: true,
  actionParams(specs, inputs, fn) {
    const spec = specs[0]
    if (spec === undefined) return {}
    if (inputs.ai === undefined) {
      throw new SovraError(
        'ERR_CONFIG',
        `function "${fn}" binds ${spec.name} ([ai]): on OpenWhisk its calls go to the router in the gateway; set [targets.openwhisk] ai_url = "http://<gateway>:8788" and the secret AI_ROUTER_TOKEN`,
      )
    }
    return { ai: { binding: spec.name, url: inputs.ai.url, token: inputs.ai.token } }
  },
})
