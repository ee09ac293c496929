import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { loadConfig } from '../../../../runtime/config/load.ts'
import { createHostApp } from '../../../../runtime/hosts/app/host-app.ts'
import { openWhiskExecutor, type ClusterRouting } from '../../../../runtime/hosts/gateway/executor.ts'
import { SILENT_LOGGER } from '../../../../runtime/hosts/local/observer.ts'
import { startFakeOpenWhisk } from '../../../support/fake-openwhisk.ts'
import { tempProject } from '../../../helpers.ts'

// The gateway's executor against the loopback OpenWhisk REST API, each action answering with its own name.
describe('openWhiskExecutor: x-sovra-version', () => {
  let fake: Awaited<ReturnType<typeof startFakeOpenWhisk>>
  let app: ReturnType<typeof createHostApp>
  const routing: Record<string, ClusterRouting> = {
    echo: { stable: 'echo-aaaaaaaa', canary: { version: 'echo-bbbbbbbb', weight: 50 } },
  }

  beforeAll(async () => {
    fake = await startFakeOpenWhisk()
    fake.store.packages.set('gw', { name: 'gw' })
    for (const action of ['echo-aaaaaaaa', 'echo-bbbbbbbb']) fake.store.actions.set(`gw/${action}`, { name: action })
    fake.hooks.invoke = async (name) => ({
      statusCode: name.endsWith('bbbbbbbb') ? 500 : 200,
      // An action cannot claim another version: the gateway names the one it invoked.
      headers: { 'content-type': 'text/plain', 'x-sovra-version': 'forged' },
      body: name,
    })
    const dir = tempProject({
      'wrangler-compat.toml': '\nname = "gw"\n[[functions]]\nname = "echo"\nmain = "echo.js"\nroutes = ["/echo"]\n',
      'echo.js': 'export default { fetch() { return new Response("local") } }\n',
    })
    const { project } = loadConfig({ cwd: dir, processEnv: {} })
    const executor = openWhiskExecutor({
      project,
      apihost: fake.apihost,
      auth: fake.auth,
      namespace: 'guest',
      current: () => ({ echo: 'echo-aaaaaaaa' }),
      routing: () => routing,
      record: () => {},
    })
    app = createHostApp({
      project,
      executor,
      log: SILENT_LOGGER,
      metrics: { render: async () => ({ contentType: 'text/plain', body: '' }) },
    })
  })
  afterAll(() => fake.close())

  it('names the action that answered, stable or canary, whatever status it answered with', async () => {
    const seen = new Map<string, string | null>()
    for (let i = 0; i < 24; i++) {
      const res = await app.request('/echo', { headers: { 'x-request-id': `g-${i}` } })
      seen.set(`${res.status} ${await res.text()}`, res.headers.get('x-sovra-version'))
    }
    expect(seen).toEqual(
      new Map([
        ['200 gw/echo-aaaaaaaa', 'echo-aaaaaaaa'],
        ['500 gw/echo-bbbbbbbb', 'echo-bbbbbbbb'],
      ]),
    )
  })

  it('lists the actions requests are split across in /_sovra/functions', async () => {
    const listed = (await (await app.request('/_sovra/functions')).json()) as Array<Record<string, unknown>>
    expect(listed).toEqual([
      expect.objectContaining({
        name: 'echo',
        action: 'echo-aaaaaaaa',
        versions: { stable: 'echo-aaaaaaaa', canary: { version: 'echo-bbbbbbbb', weight: 50 } },
      }),
    ])
  })
})
