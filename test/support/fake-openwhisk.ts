import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One REST call the fake received. */
export interface OwCall {
  method: string
  path: string
  query: Record<string, string>
  body: Record<string, unknown> | undefined
}

type Entity = Record<string, unknown>

/**
 * The OpenWhisk REST paths the `openwhisk` npm client uses (docs/platform-notes.md), on 127.0.0.1, in memory: packages, actions
 * (inside packages; PUT fails 404 while the package is missing, as the controller does), triggers, rules (with
 * status), lists with limit/skip, and the alarms feed action (`whisk.system/alarms/alarm`, lifecycle CREATE/DELETE).
 * Checks Basic auth. Records every call.
 */
export async function startFakeOpenWhisk(
  auth = 'uuid-1:secret-key',
  namespace = 'guest',
): Promise<{
  apihost: string
  auth: string
  calls: OwCall[]
  /** Trigger fires (POST triggers/<name>), with their params. */
  fired: Array<{ trigger: string; params: Record<string, unknown> }>
  /** Set `invoke` to run actions on blocking invokes (e.g. through an action proxy). */
  hooks: { invoke?: (name: string, action: Entity, params: Record<string, unknown>) => Promise<unknown> }
  store: {
    packages: Map<string, Entity>
    actions: Map<string, Entity>
    triggers: Map<string, Entity>
    rules: Map<string, Entity>
    feeds: Map<string, Entity>
  }
  close(): Promise<void>
}> {
  const store = {
    packages: new Map<string, Entity>(),
    actions: new Map<string, Entity>(),
    triggers: new Map<string, Entity>(),
    rules: new Map<string, Entity>(),
    feeds: new Map<string, Entity>(),
  }
  const calls: OwCall[] = []
  const fired: Array<{ trigger: string; params: Record<string, unknown> }> = []
  const hooks: { invoke?: (name: string, action: Entity, params: Record<string, unknown>) => Promise<unknown> } = {}
  const expected = `Basic ${Buffer.from(auth).toString('base64')}`
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x')
      const text = Buffer.concat(chunks).toString('utf8')
      const body = text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>)
      const call: OwCall = {
        method: req.method ?? 'GET',
        path: decodeURIComponent(url.pathname),
        query: Object.fromEntries(url.searchParams),
        body,
      }
      calls.push(call)
      const send = (status: number, b: unknown): void =>
        void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(b))
      if (req.headers.authorization !== expected) return send(401, { error: 'The supplied authentication is invalid.' })
      const m = /^\/api\/v1\/namespaces\/([^/]+)\/(packages|actions|triggers|rules)(?:\/(.+))?$/.exec(call.path)
      if (m === null) return send(404, { error: `no such path ${call.path}` })
      const [, ns, resource, name] = m as unknown as [
        string,
        string,
        'packages' | 'actions' | 'triggers' | 'rules',
        string | undefined,
      ]
      const missing = (): void => send(404, { error: 'The requested resource does not exist.' })
      // The alarms feed: an action in the whisk.system namespace.
      if (ns === 'whisk.system' && resource === 'actions' && name === 'alarms/alarm' && call.method === 'POST') {
        const trigger = String(body?.['triggerName'] ?? '')
        if (body?.['lifecycleEvent'] === 'CREATE') store.feeds.set(trigger, body)
        else if (body?.['lifecycleEvent'] === 'DELETE') store.feeds.delete(trigger)
        return send(200, { activationId: 'feed', response: { result: {}, success: true } })
      }
      const map = store[resource]
      if (name === undefined) {
        if (call.method !== 'GET') return send(405, { error: 'method not allowed' })
        const limit = Number(call.query['limit'] ?? 30)
        const skip = Number(call.query['skip'] ?? 0)
        return send(200, [...map.values()].slice(skip, skip + limit))
      }
      const entityNs = resource === 'actions' && name.includes('/') ? `${namespace}/${name.split('/')[0]}` : namespace
      const short = resource === 'actions' && name.includes('/') ? name.split('/').slice(1).join('/') : name
      switch (call.method) {
        case 'GET':
          return map.has(name) ? send(200, map.get(name)) : missing()
        case 'DELETE':
          if (!map.delete(name)) return missing()
          return send(200, { name: short })
        case 'PUT': {
          if (map.has(name) && call.query['overwrite'] !== 'true')
            return send(409, { error: 'resource already exists' })
          if (resource === 'actions' && name.includes('/') && !store.packages.has(name.split('/')[0] as string))
            return missing()
          let entity: Entity = { namespace: entityNs, name: short, version: '0.0.1', publish: false, ...body }
          if (resource === 'rules') {
            const fq = (s: string): { path: string; name: string } => {
              const parts = s.replace(/^\//, '').split('/')
              return { path: parts.slice(0, -1).join('/').replace(/^_/, namespace), name: parts.at(-1) as string }
            }
            if (!store.triggers.has(fq(String(body?.['trigger'])).name)) return missing()
            entity = {
              namespace,
              name,
              status: 'active',
              trigger: fq(String(body?.['trigger'])),
              action: fq(String(body?.['action'])),
            }
          }
          map.set(name, entity)
          return send(200, entity)
        }
        case 'POST': {
          if (resource === 'actions') {
            // A blocking invoke: bound parameters merged under the caller's (final: bound ones win), run by the hook.
            const action = map.get(name)
            if (action === undefined) return missing()
            if (hooks.invoke === undefined) return send(502, { error: 'this fake runs no actions (set invoke)' })
            const bound = Object.fromEntries(
              ((action['parameters'] ?? []) as Array<{ key: string; value: unknown }>).map((p) => [p.key, p.value]),
            )
            void hooks.invoke(name, action, { ...body, ...bound }).then(
              (r) => send(200, r),
              (e: unknown) => send(502, { error: String(e) }),
            )
            return
          }
          if (resource === 'triggers') {
            if (!map.has(name)) return missing()
            fired.push({ trigger: name, params: body ?? {} })
            const active = [...store.rules.values()].some(
              (r) => (r['trigger'] as { name: string }).name === name && r['status'] === 'active',
            )
            return active ? send(202, { activationId: `fire-${fired.length}` }) : send(204, {})
          }
          if (resource !== 'rules') return send(404, { error: 'invoke not supported by this fake' })
          const rule = map.get(name)
          if (rule === undefined) return missing()
          rule['status'] = body?.['status']
          return send(200, {})
        }
        default:
          return send(405, { error: 'method not allowed' })
      }
    })
  })
  // Longer than any idle gap in the tests: a client reusing a socket the server just closed gets ECONNRESET.
  server.keepAliveTimeout = 60_000
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    apihost: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    auth,
    calls,
    fired,
    hooks,
    store,
    close: () => new Promise((r) => server.close(() => r())),
  }
}
