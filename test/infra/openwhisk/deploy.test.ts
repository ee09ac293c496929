import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startActionProxy } from '../../support/action-proxy.ts'
import { startFakeOpenWhisk, type OwCall } from '../../support/fake-openwhisk.ts'
import { HEAVY_HOOK_MS, ROOT, runCli, tempProject, withFixtures } from '../../helpers.ts'

// Deploys against a loopback server implementing the OpenWhisk REST paths the `openwhisk` client uses, asserting
// the exact requests. With SOVRA_TEST_OW_APIHOST and SOVRA_TEST_OW_AUTH set, the same deploys run against that
// real cluster (the assertions on recorded calls are skipped there).
const REAL = process.env['SOVRA_TEST_OW_APIHOST'] !== undefined && process.env['SOVRA_TEST_OW_AUTH'] !== undefined

const config = (extra = ''): string => `
name = "bank-demo"

[[functions]]
name = "echo"
main = "${join(ROOT, 'functions/echo/index.ts')}"
routes = ["/v1/echo", "/v1/echo/*"]
vars = { REGION = "tokyo" }
secrets = ["API_TOKEN"]
limits = { timeout_ms = 20000, memory_mb = 256 }

[[functions]]
name = "nightly"
main = "fixtures/plain.js"
crons = ["0 2 * * *"]
timezone = "Asia/Tokyo"
${extra}`

let fake: Awaited<ReturnType<typeof startFakeOpenWhisk>> | undefined
let apihost: string
let dir: string
const writes = (calls: OwCall[]): OwCall[] => calls.filter((c) => c.method !== 'GET')
const deploy = (...args: string[]): ReturnType<typeof runCli> =>
  runCli([
    'deploy',
    '--target',
    'openwhisk',
    '--apihost',
    apihost,
    '--config',
    join(dir, 'wrangler-compat.toml'),
    ...args,
  ])

beforeAll(async () => {
  if (REAL) {
    apihost = process.env['SOVRA_TEST_OW_APIHOST'] as string
    process.env['SOVRA_OW_AUTH'] = process.env['SOVRA_TEST_OW_AUTH']
  } else {
    fake = await startFakeOpenWhisk()
    apihost = fake.apihost
    process.env['SOVRA_OW_AUTH'] = fake.auth
  }
  process.env['SOVRA_SECRET_API_TOKEN'] = 'tok-123'
  dir = withFixtures(tempProject({ 'wrangler-compat.toml': config() }))
  expect((await runCli(['keys', 'gen', '--config', join(dir, 'wrangler-compat.toml')])).code).toBe(0)
}, HEAVY_HOOK_MS)
afterAll(async () => {
  await fake?.close()
})

describe('sovra deploy --target openwhisk', () => {
  it('refuses limits outside OpenWhisk ranges before any call', async () => {
    const bad = withFixtures(
      tempProject({ 'wrangler-compat.toml': config().replace('timeout_ms = 20000', 'timeout_ms = 400000') }),
    )
    const before = fake?.calls.length ?? 0
    const res = await runCli([
      'deploy',
      '--target',
      'openwhisk',
      '--apihost',
      apihost,
      '--config',
      join(bad, 'wrangler-compat.toml'),
    ])
    expect(res.code).toBe(1)
    expect(res.err).toMatch(/function "echo": limits.timeout_ms 400000 is outside OpenWhisk's range 100-300000 ms/)
    expect(fake?.calls.length ?? 0).toBe(before)
  })

  it('ships signed actions only: no key, or a key not trusted for bundles, is refused before any call', async () => {
    const unsigned = withFixtures(tempProject({ 'wrangler-compat.toml': config() }))
    const before = fake?.calls.length ?? 0
    const res = await runCli([
      'deploy',
      '--target',
      'openwhisk',
      '--apihost',
      apihost,
      '--config',
      join(unsigned, 'wrangler-compat.toml'),
    ])
    expect(res.err).toMatch(/no signing key "default"/)
    await runCli(['keys', 'gen', '--kinds', 'model', '--config', join(unsigned, 'wrangler-compat.toml')])
    const untrusted = await runCli([
      'deploy',
      '--target',
      'openwhisk',
      '--apihost',
      apihost,
      '--config',
      join(unsigned, 'wrangler-compat.toml'),
    ])
    expect(untrusted.code).toBe(1)
    expect(untrusted.err).toMatch(
      /ERR_SIGNATURE: bundle registry:echo\.openwhisk@sha256:[0-9a-f]{64}: signed by unknown key/,
    )
    expect(fake?.calls.length ?? 0).toBe(before)
  }, 60_000)

  it('a dry run (--plan) needs no signing key: it builds, reads the cluster and prints the plan', async () => {
    const keyless = withFixtures(tempProject({ 'wrangler-compat.toml': config() }))
    const res = await runCli([
      'deploy',
      '--target',
      'openwhisk',
      '--plan',
      '--apihost',
      apihost,
      '--config',
      join(keyless, 'wrangler-compat.toml'),
    ])
    expect(res.err).not.toMatch(/signing key/)
    expect(res.code).toBe(0)
    expect(res.out).toMatch(/plan for .*\(package bank-demo\): \d+ to create/)
  }, 60_000)

  it('a high-risk function reaches the cluster only after two approvals', async () => {
    const risky = withFixtures(
      tempProject({
        'wrangler-compat.toml': `name = "risky"\n[[functions]]\nname = "payments"\nmain = "fixtures/plain.js"\nroutes = ["/pay"]\nrisk = "high"\n`,
      }),
    )
    const c = ['--config', join(risky, 'wrangler-compat.toml')]
    process.env['SOVRA_ACTOR'] = 'alice'
    await runCli(['keys', 'gen', ...c])
    for (const who of ['bob', 'carol']) await runCli(['keys', 'gen', '--name', who, '--kinds', 'approve', ...c])
    const before = fake?.calls.filter((x) => x.method === 'PUT').length ?? 0
    const first = await runCli(['deploy', '--target', 'openwhisk', '--apihost', apihost, ...c])
    expect(first.code).toBe(1)
    const id = /payments: (chg-[0-9a-f]+) \(risk high: 0\/2 approvals/.exec(first.err)?.[1] as string
    expect(id).toBeDefined()
    expect(fake?.calls.filter((x) => x.method === 'PUT').length ?? 0).toBe(before)
    process.env['SOVRA_ACTOR'] = 'bob'
    expect((await runCli(['approve', id, ...c])).err).toMatch(/only a claimed name/)
    expect((await runCli(['approve', id, '--key', 'bob', ...c])).code).toBe(0)
    process.env['SOVRA_ACTOR'] = 'alice'
    expect((await runCli(['deploy', '--target', 'openwhisk', '--apihost', apihost, ...c])).err).toMatch(
      /1\/2 approvals/,
    )
    process.env['SOVRA_ACTOR'] = 'carol'
    expect((await runCli(['approve', id, '--key', 'carol', ...c])).code).toBe(0)
    process.env['SOVRA_ACTOR'] = 'alice'
    const ok = await runCli(['deploy', '--target', 'openwhisk', '--apihost', apihost, ...c])
    expect(ok.code).toBe(0)
    expect(ok.out).toMatch(/\+ action risky\/payments-[0-9a-f]{8}/)
  }, 90_000)

  it('--plan lists the creates and changes nothing', async () => {
    const before = fake?.calls.length ?? 0
    const res = await deploy('--plan')
    expect(res.code).toBe(0)
    expect(res.out).toMatch(/plan for .*\(package bank-demo\): 5 to create, 0 to update, 0 to delete, 0 unchanged/)
    expect(res.out).toMatch(/\+ package bank-demo/)
    expect(res.out).toMatch(/\+ action bank-demo\/echo-[0-9a-f]{8}/)
    expect(res.out).toMatch(/\+ trigger bank-demo-nightly-cron-0/)
    expect(res.out).toMatch(/\+ rule bank-demo-nightly-cron-0-rule/)
    if (fake) expect(writes(fake.calls.slice(before))).toEqual([])
  })

  it('applies: package, actions with annotations, limits and parameters, the alarm feed, rules', async () => {
    const before = fake?.calls.length ?? 0
    const res = await deploy()
    expect(res.code).toBe(0)
    expect(res.out).toMatch(/applied 5 changes/)
    expect(res.out).toMatch(
      /echo: .*\/api\/v1\/web\/_\/bank-demo\/echo-[0-9a-f]{8} {2}\(routes \/v1\/echo, \/v1\/echo\/\*\)/,
    )
    if (!fake) return
    const w = writes(fake.calls.slice(before))
    expect(w.map((c) => `${c.method} ${c.path.replace(/-[0-9a-f]{8}$/, '-<sha8>')}`)).toEqual([
      'PUT /api/v1/namespaces/_/packages/bank-demo',
      'PUT /api/v1/namespaces/_/actions/bank-demo/echo-<sha8>',
      'PUT /api/v1/namespaces/_/actions/bank-demo/nightly-<sha8>',
      'PUT /api/v1/namespaces/_/triggers/bank-demo-nightly-cron-0',
      'POST /api/v1/namespaces/whisk.system/actions/alarms/alarm',
      'PUT /api/v1/namespaces/_/rules/bank-demo-nightly-cron-0-rule',
      'POST /api/v1/namespaces/_/rules/bank-demo-nightly-cron-0-rule',
    ])
    const echo = w[1] as OwCall
    expect(echo.query['overwrite']).toBe('true')
    const body = echo.body as {
      exec: { kind: string; main: string; code: string }
      limits: unknown
      parameters: Array<{ key: string; value: unknown }>
      annotations: Array<{ key: string; value: unknown }>
    }
    expect(body.exec).toMatchObject({ kind: 'nodejs:20', main: 'main' })
    expect(body.exec.code).toBe(readFileSync(join(dir, 'dist', 'openwhisk', 'echo.js'), 'utf8'))
    expect(body.limits).toEqual({ timeout: 20000, memory: 256, concurrency: 1 })
    expect(body.parameters).toEqual([
      { key: '__sovra', value: { vars: { REGION: 'tokyo' }, secrets: { API_TOKEN: 'tok-123' } } },
    ])
    const annotations = Object.fromEntries(body.annotations.map((a) => [a.key, a.value]))
    expect(annotations).toMatchObject({
      'web-export': true,
      'raw-http': true,
      final: true,
      'sovra-project': 'bank-demo',
      'sovra-function': 'echo',
    })
    const nightly = Object.fromEntries(
      ((w[2] as OwCall).body as { annotations: Array<{ key: string; value: unknown }> }).annotations.map((a) => [
        a.key,
        a.value,
      ]),
    )
    expect(nightly['web-export']).toBeUndefined()
    expect((w[4] as OwCall).body).toMatchObject({
      lifecycleEvent: 'CREATE',
      triggerName: '/_/bank-demo-nightly-cron-0',
      authKey: fake.auth,
      cron: '0 2 * * *',
      timezone: 'Asia/Tokyo',
      trigger_payload: { __sovra_trigger: 'cron', cron: '0 2 * * *' },
    })
    expect((w[5] as OwCall).body).toEqual({
      trigger: '/_/bank-demo-nightly-cron-0',
      action: expect.stringMatching(/^\/_\/bank-demo\/nightly-[0-9a-f]{8}$/),
    })
    expect((w[6] as OwCall).body).toEqual({ status: 'active' })
  })

  it('is idempotent: a second deploy changes nothing', async () => {
    const before = fake?.calls.length ?? 0
    const res = await deploy()
    expect(res.code).toBe(0)
    expect(res.out).toMatch(/0 to create, 0 to update, 0 to delete, 5 unchanged/)
    expect(res.out).toMatch(/nothing to do/)
    if (fake) expect(writes(fake.calls.slice(before))).toEqual([])
  })

  it('the deployed code answers through the action-proxy protocol as a web action', async () => {
    if (!fake) return
    const action = [...fake.store.actions.entries()].find(([k]) => k.startsWith('bank-demo/echo-'))?.[1] as {
      exec: { code: string }
      parameters: Array<{ key: string; value: unknown }>
    }
    const proxy = await startActionProxy()
    try {
      await fetch(`${proxy.url}/init`, {
        method: 'POST',
        body: JSON.stringify({ value: { name: 'echo', main: 'main', code: action.exec.code, binary: false } }),
      })
      const params = Object.fromEntries(action.parameters.map((p) => [p.key, p.value]))
      const run = await fetch(`${proxy.url}/run`, {
        method: 'POST',
        body: JSON.stringify({
          value: {
            ...params,
            __ow_method: 'get',
            __ow_path: '/v1/echo/hi',
            __ow_query: 'q=1',
            __ow_headers: { host: 'ow' },
          },
          deadline: String(Date.now() + 20000),
        }),
      })
      const result = (await run.json()) as { statusCode: number; body: string }
      expect(result.statusCode).toBe(200)
      expect(JSON.parse(result.body)).toMatchObject({ path: '/v1/echo/hi', query: { q: '1' } })
    } finally {
      await proxy.close()
    }
  })

  it('a code change deploys a new version and moves the rule; --prune removes the old version', async () => {
    const file = join(dir, 'fixtures', 'plain.js')
    writeFileSync(file, readFileSync(file, 'utf8').replace('hello from', 'hi from'))
    const plan = await deploy('--plan')
    expect(plan.out).toMatch(/1 to create, 2 to update, 0 to delete/)
    expect(plan.out).toMatch(/~ package bank-demo \(definition changed\)/)
    expect(plan.out).toMatch(/\+ action bank-demo\/nightly-[0-9a-f]{8} \(new\)/)
    expect(plan.out).toMatch(
      /~ rule bank-demo-nightly-cron-0-rule \(action bank-demo\/nightly-[0-9a-f]{8} -> bank-demo\/nightly-[0-9a-f]{8}\)/,
    )
    expect((await deploy()).code).toBe(0)
    const pruned = await deploy('--prune', 'nightly')
    expect(pruned.out).toMatch(/0 to create, 0 to update, 1 to delete/)
    expect(pruned.out).toMatch(/- action bank-demo\/nightly-[0-9a-f]{8} \(not the current version\)/)
    if (fake) expect([...fake.store.actions.keys()].filter((k) => k.startsWith('bank-demo/nightly-'))).toHaveLength(1)
  })

  it('a function removed from the config stays until --prune, which deletes its rule, trigger (and feed) and action', async () => {
    writeFileSync(join(dir, 'wrangler-compat.toml'), config().split('[[functions]]\nname = "nightly"')[0] as string)
    const kept = await deploy()
    // Only the package's record of current versions changes; the function's entities stay without --prune.
    expect(kept.out).toMatch(/0 to create, 1 to update, 0 to delete/)
    const res = await deploy('--prune')
    expect(res.out).toMatch(/0 to create, 0 to update, 3 to delete/)
    expect(res.out.indexOf('- rule')).toBeLessThan(res.out.indexOf('- trigger'))
    expect(res.out.indexOf('- trigger')).toBeLessThan(res.out.indexOf('- action'))
    if (fake) {
      expect(fake.store.triggers.size).toBe(0)
      expect(fake.store.feeds.size).toBe(0)
      expect(
        [...fake.store.actions.keys()]
          .map((k) => k.replace(/-[0-9a-f]{8}$/, ''))
          .filter((k) => k.startsWith('bank-demo/')),
      ).toEqual(['bank-demo/echo'])
    }
  })

  it('records every applied deploy in the audit log', async () => {
    const log = await runCli(['audit', '--config', join(dir, 'wrangler-compat.toml')])
    expect(log.out).toMatch(/deploy\.openwhisk +package:bank-demo/)
    expect((await runCli(['audit', 'verify', '--config', join(dir, 'wrangler-compat.toml')])).out).toMatch(/^yes/)
  }, 60_000)

  it('names the entity and the API answer when a call fails', async () => {
    if (!fake) return
    const saved = process.env['SOVRA_OW_AUTH']
    process.env['SOVRA_OW_AUTH'] = 'uuid-1:wrong'
    try {
      const res = await deploy()
      expect(res.code).toBe(1)
      expect(res.err).toMatch(/ERR_UPSTREAM: get package bank-demo failed: 401 The supplied authentication is invalid/)
    } finally {
      process.env['SOVRA_OW_AUTH'] = saved
    }
  })
})
