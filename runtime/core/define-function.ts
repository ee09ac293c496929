import type { FunctionModule } from './handlers.ts'

/**
 * Declares a function module. It only types the handlers: the returned object is the one passed in, so a plain
 * wrangler-style `export default { fetch }` module that imports nothing from sovra runs the same.
 *
 * @param module the handlers (`fetch`, `scheduled`, `object`)
 * @example
 * import { defineFunction } from 'sovra'
 * interface Env { GREETING: string }
 * export default defineFunction<Env>({
 *   fetch(request, env) { return new Response(`${env.GREETING} ${new URL(request.url).pathname}`) },
 * })
 */
export function defineFunction<TEnv = Record<string, unknown>>(module: FunctionModule<TEnv>): FunctionModule<TEnv> {
  return module
}
