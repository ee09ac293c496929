import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startGateway, type Gateway } from '../../../runtime/hosts/gateway/gateway.ts'
import { createGatewayMetrics } from '../../../infra/observe/gateway-metrics.ts'
import { loadConfig } from '../../../runtime/config/load.ts'
import { startActionProxy } from '../../support/action-proxy.ts'
import { startFakeOpenWhisk } from '../../support/fake-openwhisk.ts'
import { captureLogger, HEAVY_HOOK_MS, ROOT, runCli, tempProject, withFixtures } from '../../helpers.ts'

// Gateway -> (loopback OpenWhisk REST) -> action proxy running the deployed action code: the whole path of
// `sovra deploy` + `sovra gateway` on 127.0.0.1.
let fake: Awaited<ReturnType<typeof startFakeOpenWhisk>>
let gateway: Gateway
let dir: string
let otherKey: CryptoKey
let sign: (claims: Record<string, unknown>, opts?: { key?: CryptoKey; exp?: string }) => Promise<string>
const proxies = new Map<string, Promise<{ url: string; close(): Promise<void> }>>()
const log = captureLogger()

beforeAll(async () => {
  fake = await startFakeOpenWhisk()
  process.env['SOVRA_OW_AUTH'] = fake.auth
  const { publicKey, privateKey } = await generateKeyPair('ES256')
  const other = await generateKeyPair('ES256')
  sign = (claims, opts = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer('https://idp.bank.example')
      .setAudience('sovra')
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '5m')
      .sign(opts.key ?? privateKey)
  otherKey = other.privateKey
  dir = withFixtures(
    tempProject({
      'wrangler-compat.toml': `
name = "gw"
[[functions]]
name = "echo"
main = "${join(ROOT, 'functions/echo/index.ts')}"
routes = ["/v1/echo", "/v1/echo/*"]

[[functions]]
name = "whoami"
main = "fixtures/whoami.ts"
routes = ["/v1/whoami"]

[gateway]
jwks = "jwks.json"
issuer = "https://idp.bank.example"
audience = "sovra"
`,
    }),
  )
  writeFileSync(
    join(dir, 'jwks.json'),
    JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }),
  )
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
  fake.hooks.invoke = async (name, action, params) => {
    // One container per action, started once even when requests arrive together.
    let starting = proxies.get(name)
    if (starting === undefined) {
      starting = startActionProxy().then(async (p) => {
        await fetch(`${p.url}/init`, {
          method: 'POST',
          body: JSON.stringify({ value: { name, main: 'main', code: (action['exec'] as { code: string }).code } }),
        })
        return p
      })
      proxies.set(name, starting)
    }
    const proxy = await starting
    return (
      await fetch(`${proxy.url}/run`, {
        method: 'POST',
        body: JSON.stringify({ value: params, activation_id: 'act-1', deadline: String(Date.now() + 30_000) }),
      })
    ).json()
  }
  const { project } = loadConfig({ configPath: join(dir, 'wrangler-compat.toml'), env: undefined })
  gateway = await startGateway({
    project,
    apihost: fake.apihost,
    auth: fake.auth,
    log,
    metrics: createGatewayMetrics(),
    port: 0,
    jwt: { jwks: join(dir, 'jwks.json'), issuer: 'https://idp.bank.example', audience: 'sovra' },
  })
}, HEAVY_HOOK_MS)
afterAll(async () => {
  await gateway?.close()
  await Promise.all([...proxies.values()].map(async (p) => (await p).close()))
  await fake?.close()
})

describe('sovra gateway', () => {
  it('refuses callers without a valid token (401 ERR_UNAUTHENTICATED) and says why', async () => {
    const none = await fetch(`${gateway.url}/v1/echo`)
    expect(none.status).toBe(401)
    expect(((await none.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'ERR_UNAUTHENTICATED',
      message: expect.stringContaining('no Authorization header'),
    })
    const forged = await sign({ sub: 'mallory' }, { key: otherKey })
    expect((await fetch(`${gateway.url}/v1/echo`, { headers: { authorization: `Bearer ${forged}` } })).status).toBe(401)
    const expired = await sign({ sub: 'alice' }, { exp: '-1m' })
    const e = await fetch(`${gateway.url}/v1/echo`, { headers: { authorization: `Bearer ${expired}` } })
    expect(((await e.json()) as { error: { message: string } }).error.message).toMatch(/token refused: .*exp/)
  })

  it('routes an authenticated request to the current version of the function, with its body and query', async () => {
    const token = await sign({ sub: 'alice' })
    const res = await fetch(`${gateway.url}/v1/echo/a?x=1`, {
      method: 'POST',
      body: '銀行',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
    })
    expect(res.status).toBe(200)
    const j = (await res.json()) as {
      method: string
      path: string
      query: unknown
      body: string
      headers: Record<string, string>
      invocation: { function: string }
    }
    expect(j).toMatchObject({
      method: 'POST',
      path: '/v1/echo/a',
      query: { x: '1' },
      body: '銀行',
      invocation: { function: 'echo' },
    })
    // The caller's token is not handed to the function.
    expect(j.headers['authorization']).toBeUndefined()
    expect(fake.calls.filter((c) => c.method === 'POST' && c.path.includes('/actions/gw/')).at(-1)?.path).toMatch(
      new RegExp(`/actions/gw/${gateway.current()['echo']}$`),
    )
  })

  it('hands the verified principal (subject, groups, clearance) to ctx.principal', async () => {
    const token = await sign({ sub: 'alice', groups: ['legal', 'audit'], clearance: 'confidential' })
    const j = (await (
      await fetch(`${gateway.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as { principal: unknown }
    expect(j.principal).toEqual({ subject: 'alice', groups: ['legal', 'audit'], clearance: 'confidential' })
    const low = (await (
      await fetch(`${gateway.url}/v1/whoami`, {
        headers: { authorization: `Bearer ${await sign({ sub: 'bob', clearance: 'top-secret' })}` },
      })
    ).json()) as { principal: { clearance: string } }
    expect(low.principal.clearance).toBe('public')
  })

  it('splits traffic to a canary deployed with --canary, by request id', async () => {
    const file = join(dir, 'fixtures', 'whoami.ts')
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace(
        'principal: ctx.principal ?? null,',
        'principal: ctx.principal ?? null, v: 2,',
      ),
    )
    const res = await runCli([
      'deploy',
      'whoami',
      '--canary',
      '50',
      '--target',
      'openwhisk',
      '--apihost',
      fake.apihost,
      '--config',
      join(dir, 'wrangler-compat.toml'),
    ])
    expect(res.out).toMatch(/\+ action gw\/whoami-[0-9a-f]{8} \(new\)/)
    await gateway.refresh()
    expect(gateway.current()['echo']).toMatch(/^echo-/)
    const token = await sign({ sub: 'alice' })
    const seen = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const j = (await (
          await fetch(`${gateway.url}/v1/whoami`, {
            headers: { authorization: `Bearer ${token}`, 'x-request-id': `r-${i}` },
          })
        ).json()) as { v?: number }
        return j.v === 2 ? 'canary' : 'stable'
      }),
    )
    const canary = seen.filter((x) => x === 'canary').length
    expect(canary).toBeGreaterThan(12)
    expect(canary).toBeLessThan(48)
    const again = (await (
      await fetch(`${gateway.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'r-7' } })
    ).json()) as { v?: number }
    expect(again.v === 2 ? 'canary' : 'stable').toBe(seen[7])
  })

  it('rolls a cluster canary back instantly, and promotes it (a routing change, no upload)', async () => {
    const token = await sign({ sub: 'alice' })
    const versions = async (): Promise<Set<string>> =>
      new Set(
        await Promise.all(
          Array.from({ length: 30 }, async (_, i) => {
            const j = (await (
              await fetch(`${gateway.url}/v1/whoami`, {
                headers: { authorization: `Bearer ${token}`, 'x-request-id': `q-${i}` },
              })
            ).json()) as { v?: number }
            return j.v === 2 ? 'v2' : 'v1'
          }),
        ),
      )
    const ow = ['--target', 'openwhisk', '--apihost', fake.apihost, '--config', join(dir, 'wrangler-compat.toml')]
    const uploads = (): number => fake.calls.filter((c) => c.method === 'PUT' && c.path.includes('/actions/')).length
    const before = uploads()
    expect((await runCli(['rollout', 'rollback', 'whoami', '--reason', 'p95', ...ow])).out).toMatch(
      /canary whoami-[0-9a-f]{8} dropped/,
    )
    await gateway.refresh()
    expect(await versions()).toEqual(new Set(['v1']))
    expect((await runCli(['deploy', 'whoami', '--canary', '50', ...ow])).code).toBe(0)
    expect((await runCli(['rollout', 'promote', 'whoami', ...ow])).out).toMatch(/promoted whoami-[0-9a-f]{8} to stable/)
    await gateway.refresh()
    expect(await versions()).toEqual(new Set(['v2']))
    expect(uploads()).toBe(before)
    expect((await runCli(['audit', '--config', join(dir, 'wrangler-compat.toml')])).out).toMatch(
      /rollback\.openwhisk +whoami .*reason="p95"/,
    )
  }, 60_000)

  it('pins callers on the cluster by a JWT claim (or tenant header) to another action', async () => {
    const stable = gateway.current()['whoami'] as string
    const old = [...fake.store.actions.keys()]
      .map((k) => k.split('/')[1] as string)
      .find((n) => n.startsWith('whoami-') && n !== stable) as string
    const ow = ['--target', 'openwhisk', '--apihost', fake.apihost, '--config', join(dir, 'wrangler-compat.toml')]
    expect((await runCli(['rollout', 'pin', 'whoami', old, '--for', 'claim:tenant=legal', ...ow])).out).toContain(
      `claim:tenant=legal pinned to ${old}`,
    )
    await gateway.refresh()
    const legal = await sign({ sub: 'dana', tenant: 'legal' })
    const retail = await sign({ sub: 'erin', tenant: 'retail' })
    const v = async (t: string, i: number): Promise<number | undefined> =>
      (
        (await (
          await fetch(`${gateway.url}/v1/whoami`, {
            headers: { authorization: `Bearer ${t}`, 'x-request-id': `p-${i}` },
          })
        ).json()) as { v?: number }
      ).v
    for (let i = 0; i < 10; i++) {
      expect(await v(legal, i)).toBeUndefined()
      expect(await v(retail, i)).toBe(2)
    }
    await runCli(['rollout', 'unpin', 'whoami', '--for', 'claim:tenant=legal', ...ow])
    await gateway.refresh()
    expect(await v(legal, 0)).toBe(2)
  }, 60_000)

  it('rolls a failing cluster canary back by itself, from what the gateway saw', async () => {
    const file = join(dir, 'fixtures', 'whoami.ts')
    const good = readFileSync(file, 'utf8')
    writeFileSync(
      file,
      good.replace(
        'fetch(request, _env, ctx) {',
        'fetch(request, _env, ctx) {\n    if (request.headers.get("x-request-id") !== null) throw new Error("broken canary")',
      ),
    )
    const ow = ['--target', 'openwhisk', '--apihost', fake.apihost, '--config', join(dir, 'wrangler-compat.toml')]
    expect((await runCli(['deploy', 'whoami', '--canary', '50', ...ow])).code).toBe(0)
    writeFileSync(file, good)
    const { project } = loadConfig({ configPath: join(dir, 'wrangler-compat.toml'), env: undefined })
    const { owClient } = await import('../../../infra/targets/openwhisk/deploy.ts')
    const { changeRouting } = await import('../../../infra/targets/openwhisk/rollout.ts')
    const rolled: string[] = []
    const guarded = await startGateway({
      project,
      apihost: fake.apihost,
      auth: fake.auth,
      log,
      port: 0,
      jwt: { jwks: join(dir, 'jwks.json'), issuer: 'https://idp.bank.example', audience: 'sovra' },
      canaryControl: {
        thresholds: () => ({ maxErrorRate: 0.1, maxP95Ms: 60_000, minRequests: 5, windowS: 60 }),
        async rollback(fn, reason) {
          rolled.push(`${fn}: ${reason}`)
          await changeRouting(owClient({ apihost: fake.apihost, auth: fake.auth }), project.name, fn, 'rollback')
        },
        intervalMs: 3_600_000,
      },
    })
    try {
      const token = await sign({ sub: 'alice' })
      const statuses = await Promise.all(
        Array.from(
          { length: 40 },
          async (_, i) =>
            (
              await fetch(`${guarded.url}/v1/whoami`, {
                headers: { authorization: `Bearer ${token}`, 'x-request-id': `c-${i}` },
              })
            ).status,
        ),
      )
      expect(statuses.filter((x) => x === 500).length).toBeGreaterThan(5)
      await guarded.checkCanaries()
      expect(rolled).toEqual([expect.stringMatching(/^whoami: canary error rate 100\.00% over max_error_rate 10\.00%/)])
      const after = await Promise.all(
        Array.from(
          { length: 20 },
          async (_, i) =>
            (
              await fetch(`${guarded.url}/v1/whoami`, {
                headers: { authorization: `Bearer ${token}`, 'x-request-id': `c-${i}` },
              })
            ).status,
        ),
      )
      expect(new Set(after)).toEqual(new Set([200]))
    } finally {
      await guarded.close()
    }
  }, 90_000)

  it('serves the admin API, metrics and one log line per request; unknown paths are 404', async () => {
    expect((await fetch(`${gateway.url}/nope`)).status).toBe(404)
    const fns = (await (await fetch(`${gateway.url}/_sovra/functions`)).json()) as Array<{
      name: string
      action: string
    }>
    expect(fns.map((f) => f.name)).toEqual(['echo', 'whoami'])
    expect(fns[0]?.action).toMatch(/^echo-[0-9a-f]{8}$/)
    const metrics = await (await fetch(`${gateway.url}/_sovra/metrics`)).text()
    expect(metrics).toMatch(/sovra_gateway_requests_total\{function="echo",status="200"\} [1-9]/)
    expect(metrics).toMatch(/sovra_gateway_requests_total\{function="echo",status="401"\} [1-9]/)
    expect(log.lines.find((l) => l.msg === 'gateway request')).toMatchObject({
      function: 'echo',
      status: 200,
      subject: 'alice',
    })
  })
})
