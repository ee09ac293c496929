import { expect } from 'vitest'

import { startGateway } from '../../runtime/hosts/gateway/gateway.ts'
import { loadConfig } from '../../runtime/config/load.ts'
import { startFakeOpenWhisk } from '../support/fake-openwhisk.ts'
import { createTestIssuer } from '../support/jwt.ts'
import { actionContainers } from '../support/openwhisk-web.ts'
import { captureLogger, runCli } from '../helpers.ts'
import { ALICE, conformanceProject, JWT_AUTH } from './project.ts'
import { testHost, type Call } from './suite.ts'

// The whole cluster path on 127.0.0.1: `sovra keys gen` + `sovra deploy --target openwhisk` (infra/targets/openwhisk)
// into the loopback OpenWhisk REST fake, whose blocking invokes run the deployed action code (exec.code, with the
// bound `__sovra` parameter and the action's time limit) in action proxies; `startGateway` in front, callers
// verified by JWT against `[auth] jwks`.
testHost(
  'conformance: gateway in front of OpenWhisk',
  { streams: false, resultLimitBytes: 1024 * 1024, waitUntil: 'before-response', routes: true },
  async () => {
    const issuer = await createTestIssuer()
    const fake = await startFakeOpenWhisk()
    const containers = actionContainers()
    process.env['SOVRA_OW_AUTH'] = fake.auth
    const { config } = conformanceProject(JWT_AUTH, { 'jwks.json': JSON.stringify(issuer.jwks) })
    expect((await runCli(['keys', 'gen', '--config', config])).code).toBe(0)
    const deploy = await runCli(['deploy', '--target', 'openwhisk', '--apihost', fake.apihost, '--config', config])
    expect(deploy.code, deploy.err).toBe(0)
    fake.hooks.invoke = (name, action, params) => {
      const timeout = (action['limits'] as { timeout?: number } | undefined)?.timeout ?? 60_000
      return containers.run(name, () => (action['exec'] as { code: string }).code, params, timeout)
    }
    const { project } = loadConfig({ configPath: config, env: undefined })
    const gateway = await startGateway({
      project,
      apihost: fake.apihost,
      auth: fake.auth,
      log: captureLogger(),
      port: 0,
      jwt: project.auth,
    })
    expect(Object.keys(gateway.current()).sort()).toEqual(project.functions.map((f) => f.name).sort())

    const as =
      (token: string | undefined): Call =>
      (path, init = {}) => {
        const headers = new Headers(init.headers)
        if (token !== undefined) headers.set('authorization', `Bearer ${token}`)
        return fetch(`${gateway.url}${path}`, { ...init, headers })
      }
    const client = await issuer.sign({ sub: 'conformance-client' })
    const alice = await issuer.sign({
      sub: 'alice',
      groups: ['legal', 'audit'],
      clearance: 'confidential',
      tenant: 'bank-a',
    })
    const raised = await issuer.sign({ sub: 'bob', clearance: 'top-secret' })
    return {
      call: as(client),
      principals: [
        {
          who: 'alice, verified token (groups, clearance, tenant claims)',
          call: as(alice),
          expect: { status: 200, principal: ALICE },
        },
        {
          who: 'a token claiming an unknown clearance (lowest tier instead)',
          call: as(raised),
          expect: { status: 200, principal: { subject: 'bob', groups: [], clearance: 'public' } },
        },
        {
          who: 'no token ([auth] jwks set, allow_anonymous false)',
          call: as(undefined),
          expect: { status: 401, code: 'ERR_UNAUTHENTICATED' },
        },
        {
          who: 'a forged token',
          call: as(await issuer.sign({ sub: 'mallory' }, { key: issuer.otherKey })),
          expect: { status: 401, code: 'ERR_UNAUTHENTICATED' },
        },
        {
          who: 'a dev principal header (refused while jwks is set)',
          call: (path) => as(undefined)(path, { headers: { 'x-sovra-dev-principal': 'alice' } }),
          expect: { status: 401, code: 'ERR_UNAUTHENTICATED' },
        },
      ],
      close: async () => {
        await gateway.close()
        await containers.close()
        await fake.close()
      },
    }
  },
)
