import { writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startGateway, type Gateway } from '../../../runtime/hosts/gateway/gateway.ts'
import { loadPoolEngine } from '../../../infra/pools/load-engine.ts'
import { startPoolServer, type PoolServer } from '../../../infra/pools/server.ts'
import { startPools, type RunningPools } from '../../../infra/pools/start.ts'
import { loadConfig } from '../../../runtime/config/load.ts'
import { startActionProxy } from '../../support/action-proxy.ts'
import { startFakeOpenWhisk } from '../../support/fake-openwhisk.ts'
import { poolConfig, TIERS } from '../../support/pools.ts'
import { captureLogger, HEAVY_HOOK_MS, ROOT, runCli, tempProject } from '../../helpers.ts'

// env.AI from an OpenWhisk action: action (action proxy) -> gateway /_sovra/ai/chat (bearer token) -> router ->
// a real tiny-llama replica listed in `endpoints`.
let fake: Awaited<ReturnType<typeof startFakeOpenWhisk>>
let replica: PoolServer
let pools: RunningPools | undefined
let gateway: Gateway
let dir: string
let state: string
const proxies: Array<{ close(): Promise<void> }> = []
const TOKEN = 'router-token'

const config = (replicaUrl: string, aiUrl = 'http://unused'): string => `
name = "aiow"
[targets.openwhisk]
ai_url = "${aiUrl}"

[[functions]]
name = "ai"
main = "${join(ROOT, 'test/fixtures/functions/ai.ts')}"
routes = ["/ai/*"]
tier = "internal"
ai = { binding = "AI" }

[[pools]]
name = "qa"
engine = "llama"
model = "tiny:llama"
tier = "confidential"
endpoints = ["${replicaUrl}"]
`

beforeAll(async () => {
  state = await mkdtemp(join(tmpdir(), 'sovra-aiow-'))
  const pool = poolConfig({
    name: 'qa',
    engine: 'llama',
    model: 'tiny:llama',
    tier: 'confidential',
    threads: 1,
    probe: false,
  })
  replica = await startPoolServer({
    pool,
    tiers: TIERS,
    replica: 'gpu1',
    log: captureLogger(),
    load: () => loadPoolEngine(pool, { stateDir: state, probe: false }),
  })
  await replica.ready
  fake = await startFakeOpenWhisk()
  process.env['SOVRA_OW_AUTH'] = fake.auth
  process.env['SOVRA_SECRET_AI_ROUTER_TOKEN'] = TOKEN
  dir = tempProject({ 'wrangler-compat.toml': config(replica.url) })
  const { project } = loadConfig({ configPath: join(dir, 'wrangler-compat.toml'), env: undefined })
  pools = await startPools(project, { log: captureLogger(), onLog: () => undefined })
  gateway = await startGateway({
    project,
    apihost: fake.apihost,
    auth: fake.auth,
    log: captureLogger(),
    port: 0,
    ai: { service: pools!.router, token: TOKEN },
  })
  writeFileSync(join(dir, 'wrangler-compat.toml'), config(replica.url, gateway.url))
  expect((await runCli(['keys', 'gen', '--config', join(dir, 'wrangler-compat.toml')])).code).toBe(0)
  expect(
    (
      await runCli([
        'deploy',
        '--target',
        'openwhisk',
        '--apihost',
        fake.apihost,
        '--config',
        join(dir, 'wrangler-compat.toml'),
      ])
    ).code,
  ).toBe(0)
  await gateway.refresh()
  fake.hooks.invoke = async (name, action, params) => {
    const proxy = await startActionProxy()
    proxies.push(proxy)
    await fetch(`${proxy.url}/init`, {
      method: 'POST',
      body: JSON.stringify({ value: { name, main: 'main', code: (action['exec'] as { code: string }).code } }),
    })
    return (
      await fetch(`${proxy.url}/run`, {
        method: 'POST',
        body: JSON.stringify({ value: params, deadline: String(Date.now() + 30_000) }),
      })
    ).json()
  }
}, HEAVY_HOOK_MS)
afterAll(async () => {
  await gateway?.close()
  await pools?.close()
  await Promise.all(proxies.map((p) => p.close()))
  await fake?.close()
  await replica?.close(500)
  await rm(state, { recursive: true, force: true })
})

describe('env.AI on OpenWhisk', () => {
  it('an action chats through the gateway router with the function tier from the config', async () => {
    const res = await fetch(`${gateway.url}/ai/chat`, {
      method: 'POST',
      body: JSON.stringify({ model: 'qa', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
    })
    expect(res.status).toBe(200)
    const r = (await res.json()) as Record<string, unknown>
    expect(r).toMatchObject({ pool: 'qa', replica: 'gpu1', tier: 'internal' })
    expect(r['model_digest']).toMatch(/^[0-9a-f]{64}$/)
  })

  it('the router endpoint refuses calls without the token, and functions the config does not bind', async () => {
    const anon = await fetch(`${gateway.url}/_sovra/ai/chat`, {
      method: 'POST',
      body: JSON.stringify({ function: 'ai', request: {} }),
    })
    expect(anon.status).toBe(401)
    const other = await fetch(`${gateway.url}/_sovra/ai/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ function: 'nope', request: {} }),
    })
    expect(other.status).toBe(403)
  })
})
