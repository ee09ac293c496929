import type { SovraParams } from '../../hosts/openwhisk/entry.ts'
import { aiClient } from './client.ts'
import { httpCallHost } from './http.ts'

/**
 * The AI binding of an action on OpenWhisk: `env.AI` calls the router behind the gateway over HTTP
 * (`__sovra.ai = {binding, url, token}`, bound at deploy). Bundled only into actions of functions that bind AI.
 * @param config the `__sovra` parameter
 * @param fn the function's name (the router takes its tier and timeout from the config)
 */
export function actionEnv(config: SovraParams, fn: string): Record<string, unknown> {
  const ai = config['ai'] as { binding: string; url: string; token: string } | undefined
  if (ai === undefined)
    throw new Error('sovra: this action binds AI but was deployed without the router settings (__sovra.ai)')
  return { [ai.binding]: aiClient(httpCallHost(ai.url, ai.token, fn)) }
}
