import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { buildAction } from '../../infra/targets/openwhisk/build.ts'
import { loadConfig } from '../../runtime/config/load.ts'
import { normalizeRoute, RouteTable } from '../../triggers/http/route-table.ts'
import { actionContainers, webParams, webResponse } from '../support/openwhisk-web.ts'
import { HEAVY_HOOK_MS } from '../helpers.ts'
import { conformanceProject } from './project.ts'
import { testHost, type Call } from './suite.ts'

// Each function built as an OpenWhisk action (infra/targets/openwhisk buildAction) and run in its own action proxy
// (POST /init, POST /run) with raw-http web action params, as the controller would pass them. `__sovra` (vars) is
// passed as the deploy would bind it. The path picks the action by the config's routes; the function sees the
// whole path, as through the gateway.
const containers = actionContainers()
const actions = new Map<string, { code: () => string; timeoutMs: number; vars: Record<string, unknown> }>()

/** Runs one action with params, as the invoker would. */
async function runAction(fn: string, value: Record<string, unknown>): Promise<Record<string, unknown>> {
  const a = actions.get(fn)
  if (a === undefined) throw new Error(`no action ${fn}`)
  return containers.run(fn, a.code, { ...value, __sovra: { vars: a.vars } }, a.timeoutMs)
}

let built: Promise<RouteTable<string>> | undefined
/** Builds every function of the conformance project as an action, once for this file; answers the route table. */
function buildAll(): Promise<RouteTable<string>> {
  built ??= (async () => {
    const { dir, config } = conformanceProject()
    const { project } = loadConfig({ configPath: config, env: undefined })
    // One after another, as `sovra build` does: concurrent builds into one folder rewrite its package.json while
    // esbuild reads it (infra/targets/openwhisk/build.ts bundleCjs).
    for (const fn of project.functions) {
      const artifact = await buildAction(fn, join(dir, 'dist', 'openwhisk'), dir)
      const code = readFileSync(artifact.path, 'utf8')
      actions.set(fn.name, { code: () => code, timeoutMs: fn.limits.timeout_ms, vars: fn.vars })
    }
    return new RouteTable(
      project.functions.flatMap((f) => f.routes.map((r) => ({ pattern: normalizeRoute(r).pattern, target: f.name }))),
    )
  })()
  return built
}
afterAll(() => containers.close())

testHost(
  'conformance: OpenWhisk action proxy (web action calls)',
  { streams: false, resultLimitBytes: 1024 * 1024, waitUntil: 'before-response', routes: false },
  async () => {
    const routes = await buildAll()
    const call: Call = async (path, init) => {
      const url = new URL(path, 'https://ow.example')
      const fn = routes.match(url.pathname)?.target
      if (fn === undefined) throw new Error(`no function serves ${url.pathname} in the conformance project`)
      return webResponse(await runAction(fn, await webParams(new Request(url, init))))
    }
    return {
      call,
      // A raw-http web action call carries no caller: only the gateway's blocking invoke sets `__sovra_principal`
      // (runtime/hosts/openwhisk/entry.ts, "Only the gateway's blocking invoke carries it"), so ctx.principal is
      // undefined here, where the embedded host would say anonymous. By design: such an action sits behind the gateway.
      principals: [{ who: 'a direct web action call', call, expect: { status: 200, principal: null } }],
      // The containers outlive this block: the trigger cases below run in them too.
      close: async () => undefined,
    }
  },
)

describe('conformance: OpenWhisk action proxy, triggers', () => {
  beforeAll(() => buildAll(), HEAVY_HOOK_MS)

  it('crons run scheduled on OpenWhisk, with noRetry reported', async () => {
    expect(await runAction('plain', { __sovra_trigger: 'cron', cron: '0 * * * *' })).toMatchObject({ ok: true })
    // A failure the handler did not mark: the trigger may retry it.
    expect(await runAction('echo', { __sovra_trigger: 'cron', cron: '0 * * * *' })).toMatchObject({
      error: { code: 'ERR_NO_HANDLER', status: 501, no_retry: false },
    })
    // plain.js calls controller.noRetry() and throws when FAIL_CRON is "yes": the result must say so. Its own
    // container, as the env is built once per container (runtime/hosts/openwhisk/entry.ts envOf).
    const plain = actions.get('plain')
    if (plain === undefined) throw new Error('no action plain')
    const failed = await containers.run(
      'plain-fail-cron',
      plain.code,
      { __sovra_trigger: 'cron', cron: '0 * * * *', __sovra: { vars: { ...plain.vars, FAIL_CRON: 'yes' } } },
      plain.timeoutMs,
    )
    expect(failed).toEqual({
      error: expect.objectContaining({ code: 'ERR_HANDLER', status: 500, no_retry: true }),
    })
  })
})
