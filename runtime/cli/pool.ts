import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { createLogger } from '../../infra/observe/logger.ts'
import { loadPoolEngine } from '../../infra/pools/load-engine.ts'
import { startPoolServer } from '../../infra/pools/server.ts'
import { COMMON_OPTIONS, parseCommandArgs, parsePort } from './args.ts'
import type { Command } from './command.ts'
import { stateDir } from './storage.ts'
import { loadTrust, openRegistry } from './registry.ts'

const USAGE = 'sovra pool serve --pool NAME [--port N] [--host H] [--replica ID] [--config FILE] | sovra pool probe --engine llama|onnx --model FILE'
const OPTIONS = {
  ...COMMON_OPTIONS,
  pool: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, replica: { type: 'string' },
  engine: { type: 'string' }, model: { type: 'string' }, 'drain-ms': { type: 'string' },
} as const

/** `sovra pool serve`: one long-running inference replica; `sovra pool probe`: load a model file and exit 0. */
export const poolCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const [sub, ...rest] = args
    const { values } = parseCommandArgs(rest, OPTIONS, USAGE)
    if (values.help || sub === undefined) return io.out(USAGE), sub === undefined ? 2 : 0
    if (sub === 'probe') return probe(values.engine, values.model)
    if (sub !== 'serve') throw new SovraError('ERR_USAGE', `unknown subcommand ${JSON.stringify(sub)}; valid: serve, probe\nusage: ${USAGE}`)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const pool = project.pools.find((p) => p.name === values.pool)
    if (pool === undefined) {
      const names = project.pools.map((p) => p.name)
      throw new SovraError('ERR_USAGE', `--pool: ${values.pool === undefined ? 'required' : `unknown pool ${JSON.stringify(values.pool)}`}; pools in ${project.file}: ${names.length ? names.join(', ') : '(none: add a [[pools]] table)'}`)
    }
    const log = createLogger()
    const replica = values.replica ?? `${pool.name}-${process.pid}`
    const server = await startPoolServer({
      pool, tiers: project.tiers, replica, log,
      load: () => loadPoolEngine(pool, {
        stateDir: stateDir(project, values.state), secret: (n) => project.secrets.pick([n])[n],
        ...(pool.model.startsWith('registry:') ? { registry: { registry: openRegistry(project, values.state), trust: loadTrust(project) } } : {}),
      }),
      hostname: values.host ?? '127.0.0.1',
      port: parsePort(values.port, '--port', 8400),
    })
    // The local scaler reads this line to learn the port (it starts replicas with --port 0).
    log.info({ pool: pool.name, replica, url: server.url, port: server.port }, 'pool replica listening')
    try {
      await server.ready
    } catch (e) {
      await server.close(0)
      throw e
    }
    const drainMs = values['drain-ms'] === undefined ? 30_000 : Number(values['drain-ms'])
    const stopped = new Promise<number>((resolve) => {
      const stop = (sig: string): void => {
        log.info({ pool: pool.name, replica, signal: sig }, 'pool replica draining')
        void server.close(drainMs).then(() => resolve(0))
      }
      process.once('SIGTERM', () => stop('SIGTERM'))
      process.once('SIGINT', () => stop('SIGINT'))
    })
    // A replica started by a host exits when the host is gone (killed without a chance to stop it).
    const parent = Number(process.env['SOVRA_PARENT_PID'])
    if (Number.isInteger(parent) && parent > 0) {
      setInterval(() => {
        try {
          process.kill(parent, 0)
        } catch {
          log.warn({ pool: pool.name, replica, parent }, 'host process is gone; pool replica stopping')
          void server.close(0).then(() => process.exit(0))
        }
      }, 2000).unref()
    }
    return stopped
  },
}

async function probe(engine: string | undefined, model: string | undefined): Promise<number> {
  if (model === undefined || (engine !== 'llama' && engine !== 'onnx')) {
    throw new SovraError('ERR_USAGE', `probe needs --engine llama|onnx (received ${JSON.stringify(engine)}) and --model FILE\nusage: ${USAGE}`)
  }
  if (engine === 'llama') {
    const { loadLlamaEngine } = await import('../../infra/pools/engines/llama.ts')
    const e = await loadLlamaEngine({ modelPath: model, threads: 1, slots: 1, contextSize: 256 })
    await e.close()
  } else {
    const { loadOnnxEngine } = await import('../../infra/pools/engines/onnx.ts')
    const e = await loadOnnxEngine({ modelPath: model, threads: 1, slots: 1 })
    await e.close()
  }
  return 0
}
