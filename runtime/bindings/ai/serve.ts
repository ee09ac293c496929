import { SovraError } from '../../core/errors.ts'
import type { AiCaller, AiOperations, AiService } from '../../core/ports.ts'
import type { Served } from '../define.ts'

const METHODS = ['chat', 'embed', 'classify'] as const satisfies ReadonlyArray<keyof AiOperations>
type Method = (typeof METHODS)[number]

/**
 * The host side: runs one `env.AI` call through the AI service (the router), as `caller`.
 * @param service the router
 * @param caller the calling function and its tier
 * @param method chat, embed or classify
 * @param args the call's arguments (one request object)
 */
export async function serveAiCall(
  service: AiService,
  caller: AiCaller,
  method: string,
  args: unknown[],
): Promise<Served> {
  if (!(METHODS as readonly string[]).includes(method)) {
    throw new SovraError('ERR_BAD_REQUEST', `unknown AI method ${JSON.stringify(method)}; valid: ${METHODS.join(', ')}`)
  }
  const request = args[0]
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `env.AI.${method}: expected one request object, received ${request === null ? 'null' : typeof request}`,
    )
  }
  // The request's fields are checked by the router and the replica (model, tier, messages, input), which name
  // what is wrong; here only its shape as one object.
  return {
    value: await service.call(method as Method, request as AiOperations[Method]['request'], caller),
    transfer: [],
  }
}
