import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { startGateway } from '../hosts/gateway/gateway.ts'
import { createGatewayMetrics } from '../../infra/observe/gateway-metrics.ts'
import { createLogger } from '../../infra/observe/logger.ts'
import { startPools } from '../../infra/pools/start.ts'
import { owTarget, requireCluster } from '../../infra/targets/openwhisk/cluster.ts'
import { openwhisk } from '../../infra/targets/openwhisk/index.ts'
import { actor } from '../../infra/deploy/project-state.ts'
import { thresholdsOf } from '../../infra/deploy/control-loop.ts'
import { COMMON_OPTIONS, parseCommandArgs, parseHost, parsePort } from './args.ts'
import type { Command } from './command.ts'
import { controlAdmin } from './control-app.ts'
import { CONTROL_COMMANDS } from './host-control.ts'

const USAGE =
  'sovra gateway [--port 8788] [--host 127.0.0.1] [--apihost URL] [--namespace NS] [--anonymous]   (auth: SOVRA_OW_AUTH=uuid:key; callers: [auth] jwks)'
const OPTIONS = {
  ...COMMON_OPTIONS,
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  apihost: { type: 'string' },
  namespace: { type: 'string' },
  anonymous: { type: 'boolean' },
} as const

/** `sovra gateway`: serves business apps in front of the cluster (routes, JWT, blocking invoke of current versions). */
export const gatewayCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const { values } = parseCommandArgs(args, OPTIONS, USAGE)
    if (values.help) return (io.out(USAGE), 0)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const { apihost, auth, namespace } = requireCluster(owTarget(project, values), USAGE)
    // Fail closed: without a JWKS every caller would be anonymous; that takes an explicit --anonymous.
    if (project.auth.jwks === undefined && values.anonymous !== true)
      throw new SovraError(
        'ERR_CONFIG',
        'the gateway authenticates callers with JWT: add [auth] jwks = "<JWKS file or URL>" (issuer, audience optional), or pass --anonymous on a trusted network',
      )
    const log = createLogger()
    // With [[pools]], the gateway also runs the router actions' env.AI calls go to (POST /_sovra/ai/<op>).
    const aiToken = project.secrets.pick(['AI_ROUTER_TOKEN'])['AI_ROUTER_TOKEN']
    const pools =
      project.pools.length > 0 && aiToken !== undefined
        ? await startPools(project, { state: values.state, log })
        : undefined
    if (project.pools.length > 0 && aiToken === undefined)
      log.warn({}, 'pools are configured but the secret AI_ROUTER_TOKEN is not set: the AI router is off')
    const gateway = await startGateway({
      canaryControl: {
        thresholds: (fn) => thresholdsOf(project, fn),
        // The same rollback as `sovra rollout rollback --target openwhisk`: the package's routing, audited.
        rollback: (fn, reason) =>
          openwhisk
            .rollout(
              {
                project,
                state: values.state,
                env: process.env,
                actor: actor(),
                flags: { apihost, namespace },
                say: (line) => log.info({ function: fn }, line),
              },
              { op: 'rollback', fn, reason },
            )
            .catch((e: unknown) =>
              log.error(
                { function: fn, err: (e as Error).message },
                'gateway: canary rollback failed or was not audited',
              ),
            ),
      },
      ...(pools === undefined || aiToken === undefined ? {} : { ai: { service: pools.router, token: aiToken } }),
      project,
      apihost,
      auth,
      namespace,
      log,
      metrics: createGatewayMetrics(),
      port: parsePort(values.port, '--port', 8788),
      hostname: parseHost(values.host, '--host', '127.0.0.1'),
      jwt: project.auth,
      // deploy, rollout, approve, ... for operators with a verified token ([auth] operators), as on the embedded host.
      admin: [controlAdmin({ project, state: values.state, commands: CONTROL_COMMANDS })],
    })
    io.err(
      `sovra gateway: ${gateway.url} -> ${apihost} (package ${project.name}: ${
        Object.entries(gateway.current())
          .map(([f, a]) => `${f}=${a}`)
          .join(', ') || 'nothing deployed'
      })`,
    )
    await new Promise<void>((r) => {
      process.once('SIGTERM', () => r())
      process.once('SIGINT', () => r())
    })
    await gateway.close()
    await pools?.close()
    return 0
  },
}
