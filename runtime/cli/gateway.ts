import { resolve } from 'node:path'

import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { startGateway } from '../../infra/openwhisk/gateway.ts'
import { createLogger } from '../../infra/observe/logger.ts'
import { startPools } from './ai.ts'
import { owTarget, requireCluster } from './openwhisk-target.ts'
import { owClient } from '../../infra/openwhisk/deploy.ts'
import { changeRouting } from '../../infra/openwhisk/rollout.ts'
import { audit } from './registry.ts'
import { thresholdsOf } from './versions.ts'
import { COMMON_OPTIONS, parseCommandArgs, parsePort } from './args.ts'
import type { Command } from './command.ts'

const USAGE = 'sovra gateway [--port 8788] [--host 127.0.0.1] [--apihost URL] [--namespace NS] [--anonymous]   (auth: SOVRA_OW_AUTH=uuid:key; callers: [gateway] jwks)'
const OPTIONS = { ...COMMON_OPTIONS, port: { type: 'string', short: 'p' }, host: { type: 'string' }, apihost: { type: 'string' }, namespace: { type: 'string' }, anonymous: { type: 'boolean' } } as const

/** `sovra gateway`: serves business apps in front of the cluster (routes, JWT, blocking invoke of current versions). */
export const gatewayCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const { values } = parseCommandArgs(args, OPTIONS, USAGE)
    if (values.help) return io.out(USAGE), 0
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const { apihost, auth, namespace } = requireCluster(owTarget(project, values), USAGE)
    const g = project.config.gateway
    // Fail closed: without a JWKS the gateway would pass anyone through; that takes an explicit --anonymous.
    if (g === undefined && values.anonymous !== true) throw new SovraError('ERR_CONFIG', 'the gateway authenticates callers with JWT: add [gateway] jwks = "<JWKS file or URL>" (issuer, audience optional), or pass --anonymous on a trusted network')
    const log = createLogger()
    // With [[pools]], the gateway also runs the router actions' env.AI calls go to (POST /_sovra/ai/<op>).
    const aiToken = project.secrets.pick(['AI_ROUTER_TOKEN'])['AI_ROUTER_TOKEN']
    const pools = project.pools.length > 0 && aiToken !== undefined ? await startPools(project, { state: values.state, log }) : undefined
    if (project.pools.length > 0 && aiToken === undefined) log.warn({}, 'pools are configured but the secret AI_ROUTER_TOKEN is not set: the AI router is off')
    const ow = owClient({ apihost, auth, ...(namespace === undefined ? {} : { namespace }) })
    const gateway = await startGateway({
      canaryControl: {
        thresholds: (fn) => thresholdsOf(project, fn),
        async rollback(fn, reason) {
          const { before, after } = await changeRouting(ow, project.name, fn, 'rollback')
          await audit(project, values.state, { action: 'rollback.openwhisk', subject: fn, before: before.canary?.version, after: after.stable, reason }).catch((e: unknown) => log.warn({ err: (e as Error).message }, 'gateway: audit entry not written'))
        },
      },
      ...(pools === undefined || aiToken === undefined ? {} : { ai: { service: pools.router, token: aiToken } }),
      project, apihost, auth, namespace, log,
      port: parsePort(values.port, '--port', 8788), hostname: values.host ?? '127.0.0.1',
      ...(g === undefined ? {} : { jwt: { jwks: /^https?:\/\//.test(g.jwks) ? g.jwks : resolve(project.dir, g.jwks), issuer: g.issuer, audience: g.audience, groupsClaim: g.groups_claim, clearanceClaim: g.clearance_claim } }),
    })
    io.err(`sovra gateway: ${gateway.url} -> ${apihost} (package ${project.name}: ${Object.entries(gateway.current()).map(([f, a]) => `${f}=${a}`).join(', ') || 'nothing deployed'})`)
    await new Promise<void>((r) => {
      process.once('SIGTERM', () => r())
      process.once('SIGINT', () => r())
    })
    await gateway.close()
    await pools?.close()
    return 0
  },
}
