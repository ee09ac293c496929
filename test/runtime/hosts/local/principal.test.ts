import type { IncomingMessage } from 'node:http'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { loadConfig } from '../../../../runtime/config/load.ts'
import { createLocalApp } from '../../../../runtime/hosts/local/app.ts'
import { SILENT_LOGGER } from '../../../../runtime/hosts/local/observer.ts'
import { createPromMetrics } from '../../../../infra/observe/metrics.ts'
import { startTestHost, type TestHost } from '../../../../runtime/testing/index.ts'
import { createTestIssuer, type TestIssuer } from '../../../support/jwt.ts'
import { ROOT, tempProject, withFixtures } from '../../../helpers.ts'

const FUNCTIONS = `
name = "principals"
[[functions]]
name = "whoami"
main = "fixtures/whoami.ts"
routes = ["/v1/whoami"]

[[functions]]
name = "echo"
main = "${join(ROOT, 'functions/echo/index.ts')}"
routes = ["/v1/echo"]
`

const whoami = async (res: Response): Promise<unknown> => ((await res.json()) as { principal: unknown }).principal

describe('embedded host: ctx.principal without [auth] jwks (dev principals)', () => {
  let host: TestHost
  let dir: string

  beforeAll(async () => {
    dir = withFixtures(
      tempProject({
        'wrangler-compat.toml': `${FUNCTIONS}
[[auth.dev_principals]]
name = "alice"
groups = ["legal", "audit"]
clearance = "confidential"
tenant = "bank-a"

[[auth.dev_principals]]
name = "bob"
`,
      }),
    )
    host = await startTestHost({ config: join(dir, 'wrangler-compat.toml'), processEnv: {} })
  })
  afterAll(() => host?.close())

  it('hands a function the anonymous principal (lowest clearance) when the caller sends nothing', async () => {
    expect(await whoami(await host.fetch('/v1/whoami'))).toEqual({
      subject: 'anonymous',
      groups: [],
      clearance: 'public',
      anonymous: true,
    })
  })

  it('hands a function the dev principal a loopback caller names', async () => {
    const res = await host.fetch('/v1/whoami', { headers: { 'x-sovra-dev-principal': 'alice' } })
    expect(res.status).toBe(200)
    expect(await whoami(res)).toEqual({
      subject: 'alice',
      groups: ['legal', 'audit'],
      clearance: 'confidential',
      tenant: 'bank-a',
    })
    expect(await whoami(await host.fetch('/v1/whoami', { headers: { 'x-sovra-dev-principal': 'bob' } }))).toEqual({
      subject: 'bob',
      groups: [],
      clearance: 'public',
    })
    // The admin API says who the host takes the caller for, by the same step.
    expect(
      await (await host.fetch('/_sovra/whoami', { headers: { 'x-sovra-dev-principal': 'alice' } })).json(),
    ).toMatchObject({ subject: 'alice', tenant: 'bank-a' })
  })

  it('answers 401 listing the valid names for an unknown dev principal, without running the function', async () => {
    const res = await host.fetch('/v1/whoami', { headers: { 'x-sovra-dev-principal': 'eve' } })
    expect(res.status).toBe(401)
    expect(await res.json()).toEqual({
      error: {
        code: 'ERR_UNAUTHENTICATED',
        reason: 'dev_principal',
        message: 'unknown dev principal "eve"; valid names are: alice, bob',
      },
    })
  })

  it('refuses the dev principal header from a socket off loopback (the host reads the socket, not a header)', async () => {
    const { project } = loadConfig({ configPath: join(dir, 'wrangler-compat.toml'), processEnv: {} })
    const app = createLocalApp({
      project,
      functions: host.host.functions,
      log: SILENT_LOGGER,
      metrics: createPromMetrics(),
    })
    // What @hono/node-server hands the app: the Node request, whose socket says where the caller is.
    const incoming = {
      headers: { 'x-sovra-dev-principal': 'alice', 'x-forwarded-for': '127.0.0.1' },
      socket: { remoteAddress: '10.20.30.40' },
    } as unknown as IncomingMessage
    const res = await app.fetch(
      new Request('http://host/v1/whoami', { headers: { 'x-sovra-dev-principal': 'alice' } }),
      { incoming },
    )
    expect(res.status).toBe(401)
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
      'x-sovra-dev-principal is accepted only from loopback (127.0.0.0/8, ::1); this request came from 10.20.30.40',
    )
  })
})

describe('embedded host: ctx.principal with [auth] jwks', () => {
  let host: TestHost
  let idp: TestIssuer

  beforeAll(async () => {
    idp = await createTestIssuer()
    const dir = withFixtures(
      tempProject({
        'wrangler-compat.toml': `${FUNCTIONS}
[auth]
jwks = "idp/jwks.json"
issuer = "https://idp.bank.example"
audience = "sovra"
`,
        'idp/jwks.json': '',
      }),
    )
    writeFileSync(join(dir, 'idp/jwks.json'), JSON.stringify(idp.jwks))
    host = await startTestHost({ config: join(dir, 'wrangler-compat.toml'), processEnv: {} })
  })
  afterAll(() => host?.close())

  const bearer = (token: string): RequestInit => ({ headers: { authorization: `Bearer ${token}` } })

  it('hands a function the verified principal: subject, groups, clearance, tenant', async () => {
    const token = await idp.sign({ sub: 'alice', groups: ['legal'], clearance: 'restricted', tenant: 'bank-a' })
    expect(await whoami(await host.fetch('/v1/whoami', bearer(token)))).toEqual({
      subject: 'alice',
      groups: ['legal'],
      clearance: 'restricted',
      tenant: 'bank-a',
    })
  })

  it('keeps the verified token from the function', async () => {
    const echo = (await (
      await host.fetch('/v1/echo', {
        headers: { authorization: `Bearer ${await idp.sign({ sub: 'alice' })}`, 'x-trace': 't1' },
      })
    ).json()) as { headers: Record<string, string> }
    expect(echo.headers['x-trace']).toBe('t1')
    expect(echo.headers['authorization']).toBeUndefined()
  })

  it('refuses forged, expired, wrong-audience and wrong-issuer tokens with 401 and the reason', async () => {
    const cases: Array<[string, string, RegExp]> = [
      [await idp.sign({ sub: 'mallory' }, { key: idp.otherKey }), 'signature', /bad signature/],
      [await idp.sign({ sub: 'alice' }, { exp: Math.floor(Date.now() / 1000) - 60 }), 'expired', /expired at/],
      [
        await idp.sign({ sub: 'alice' }, { audience: 'payroll' }),
        'audience',
        /wrong audience: expected "sovra", received "payroll"/,
      ],
      [
        await idp.sign({ sub: 'alice' }, { issuer: 'https://evil.example' }),
        'issuer',
        /wrong issuer: expected "https:\/\/idp\.bank\.example", received "https:\/\/evil\.example"/,
      ],
    ]
    for (const [token, reason, message] of cases) {
      const res = await host.fetch('/v1/whoami', bearer(token))
      expect(res.status).toBe(401)
      expect(((await res.json()) as { error: unknown }).error).toEqual({
        code: 'ERR_UNAUTHENTICATED',
        reason,
        message: expect.stringMatching(message),
      })
    }
  })

  it('refuses a caller without a token, and the dev principal header, saying why', async () => {
    const none = await host.fetch('/v1/whoami')
    expect(none.status).toBe(401)
    expect(((await none.json()) as { error: { message: string } }).error.message).toBe(
      'expected Authorization: Bearer <JWT>, received no Authorization header',
    )
    const dev = await host.fetch('/v1/whoami', { headers: { 'x-sovra-dev-principal': 'alice' } })
    expect(dev.status).toBe(401)
    expect(((await dev.json()) as { error: { message: string } }).error.message).toMatch(/\[auth\] jwks is set/)
  })
})
