import { errorToBody, SovraError } from '../../core/errors.ts'
import { checkBearer, MINIO_WEBHOOK_BEARER } from '../../auth/bearer.ts'
import { deliveriesFor, type ObjectTrigger } from '../../../triggers/object/match.ts'
import { normalizeRecords } from '../../../triggers/object/normalize.ts'
import type { ActionMain } from './entry.ts'
import { isWebParams } from './params.ts'

/** One function's object triggers and the OpenWhisk trigger that runs it. */
export interface BridgeRoute {
  function: string
  trigger: string
  filters: ObjectTrigger[]
}

/** What a bridge needs at run time, bound at deploy as the `__sovra` parameter. */
export interface BridgeParams {
  routes: BridgeRoute[]
  /** The bearer token MinIO sends (`auth_token`); the secret MINIO_WEBHOOK_TOKEN. */
  webhook_token?: string
}

const json = (statusCode: number, body: unknown): Record<string, unknown> => ({
  statusCode,
  headers: { 'content-type': 'application/json; charset=utf-8' },
  body: JSON.stringify(body),
})

/**
 * The events bridge web action (`<pkg>/_events`): receives MinIO bucket notifications (webhook target, bearer
 * token), normalises the records as the embedded host does, matches them against each function's
 * `object_triggers` (bucket, event type, prefix, suffix) and fires that function's trigger with
 * `{__sovra_trigger: "object", event}`. MinIO's HEAD probe answers 200. A trigger that cannot be fired answers 502,
 * so MinIO keeps the notification in its queue and retries.
 * @param fire fires one trigger (the action's own API host and key, `provide-api-key`); injected by the build
 */
export function createEventsBridgeMain(
  fire: (trigger: string, params: Record<string, unknown>) => Promise<void>,
): ActionMain {
  return async (params) => {
    try {
      if (!isWebParams(params))
        throw new SovraError('ERR_BAD_REQUEST', 'the events bridge is a web action: call it over HTTP (MinIO webhook)')
      const config = (params['__sovra'] ?? { routes: [] }) as BridgeParams
      const method = params.__ow_method.toUpperCase()
      if (method === 'HEAD' || method === 'GET') return json(200, { ok: true, routes: config.routes.length })
      // The same constant-time check, code (ERR_UNAUTHENTICATED) and status (401) as the embedded host's webhook.
      checkBearer(params.__ow_headers?.['authorization'], config.webhook_token, MINIO_WEBHOOK_BEARER)
      const text =
        params.__ow_body === undefined
          ? ''
          : new TextDecoder().decode(Uint8Array.from(atob(params.__ow_body), (c) => c.charCodeAt(0)))
      let body: { Records?: unknown }
      try {
        body = JSON.parse(text) as { Records?: unknown }
      } catch {
        throw new SovraError(
          'ERR_BAD_REQUEST',
          `expected a MinIO notification (JSON with Records), received ${JSON.stringify(text.slice(0, 80))}`,
        )
      }
      const events = normalizeRecords(body.Records ?? [], 'minio')
      const deliveries = deliveriesFor(
        config.routes.map((r) => ({ name: r.function, triggers: r.filters })),
        events,
      )
      const byFunction = new Map(config.routes.map((r) => [r.function, r.trigger]))
      for (const d of deliveries) {
        const trigger = byFunction.get(d.function) as string
        try {
          await fire(trigger, { __sovra_trigger: 'object', event: d.event })
        } catch (e) {
          throw new SovraError(
            'ERR_UPSTREAM',
            `firing trigger ${trigger} for ${d.event.bucket}/${d.event.key} failed: ${(e as Error).message}`,
          )
        }
      }
      return json(200, {
        events: events.length,
        fired: deliveries.map((d) => ({ function: d.function, key: d.event.key })),
      })
    } catch (error) {
      const { status, body } = errorToBody(error)
      return json(status, body)
    }
  }
}

/**
 * Fires an OpenWhisk trigger with the action's own credentials (`__OW_API_HOST`, `__OW_API_KEY`; the action needs the
 * `provide-api-key` annotation). POST namespaces/_/triggers/<name> answers 202, or 204 when no rule is active.
 * @param trigger the trigger name
 * @param params the trigger's params
 */
export async function fireTrigger(trigger: string, params: Record<string, unknown>): Promise<void> {
  const host = process.env['__OW_API_HOST']
  const key = process.env['__OW_API_KEY']
  if (host === undefined || key === undefined)
    throw new Error('no __OW_API_HOST/__OW_API_KEY in the action (is the provide-api-key annotation set?)')
  const res = await fetch(`${host.replace(/\/+$/, '')}/api/v1/namespaces/_/triggers/${encodeURIComponent(trigger)}`, {
    method: 'POST',
    headers: { authorization: `Basic ${btoa(key)}`, 'content-type': 'application/json' },
    body: JSON.stringify(params),
  })
  if (res.status !== 202 && res.status !== 204 && !res.ok)
    throw new Error(`${res.status} ${(await res.text()).slice(0, 200)}`)
}
