import type { Project } from '../../runtime/config/resolve.ts'
import type { PoolConfig } from '../../runtime/config/pools.ts'
import { SovraError } from '../../runtime/core/errors.ts'
import { loadTrust, openRegistry, stateDir } from '../deploy/project-state.ts'
import { createLogger } from '../observe/logger.ts'
import { loadPoolEngine } from './load-engine.ts'
import { startPoolServer } from './server.ts'

/** How one replica runs (`sovra pool serve`). */
export interface ReplicaRun {
  project: Project
  pool: PoolConfig
  /** The state folder override. */
  state: string | undefined
  replica: string
  hostname: string
  port: number
  /** How long SIGTERM/SIGINT wait for in-flight work. */
  drainMs: number
  /** The host process that started this replica: when it is gone, the replica stops (SOVRA_PARENT_PID). */
  parentPid: number | undefined
}

/**
 * Runs one inference replica until it is told to stop: loads and warms the model (registry models verified
 * first), serves it, drains in-flight work on SIGTERM/SIGINT, and exits when the host that started it is gone
 * (killed without a chance to stop it). Resolves to the exit code.
 * @param run the project, pool, address and lifecycle settings
 */
export async function runReplica(run: ReplicaRun): Promise<number> {
  const { project, pool, replica } = run
  const log = createLogger()
  const server = await startPoolServer({
    pool,
    tiers: project.tiers,
    replica,
    log,
    load: () =>
      loadPoolEngine(pool, {
        stateDir: stateDir(project, run.state),
        secret: (n) => project.secrets.pick([n])[n],
        ...(pool.model.startsWith('registry:')
          ? { registry: { registry: openRegistry(project, run.state), trust: loadTrust(project) } }
          : {}),
      }),
    hostname: run.hostname,
    port: run.port,
  })
  // The local scaler reads this line to learn the port (it starts replicas with --port 0).
  log.info({ pool: pool.name, replica, url: server.url, port: server.port }, 'pool replica listening')
  try {
    await server.ready
  } catch (e) {
    await server.close(0)
    throw e
  }
  const stopped = new Promise<number>((resolve) => {
    const stop = (sig: string): void => {
      log.info({ pool: pool.name, replica, signal: sig }, 'pool replica draining')
      void server.close(run.drainMs).then(() => resolve(0))
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
  const parent = run.parentPid
  if (parent !== undefined && Number.isInteger(parent) && parent > 0) {
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
}

/**
 * Loads a model file with its engine and closes it (`sovra pool probe`): run in a child process, so a file that
 * aborts the engine (a malformed GGUF) kills the probe, not the host.
 * @param engine llama or onnx
 * @param model the model file
 * @param usage the command's usage line, for the error
 */
export async function probeModel(
  engine: string | undefined,
  model: string | undefined,
  usage: string,
): Promise<number> {
  if (model === undefined || (engine !== 'llama' && engine !== 'onnx')) {
    throw new SovraError(
      'ERR_USAGE',
      `probe needs --engine llama|onnx (received ${JSON.stringify(engine)}) and --model FILE\nusage: ${usage}`,
    )
  }
  if (engine === 'llama') {
    const { loadLlamaEngine } = await import('./engines/llama.ts')
    const e = await loadLlamaEngine({ modelPath: model, threads: 1, slots: 1, contextSize: 256 })
    await e.close()
  } else {
    const { loadOnnxEngine } = await import('./engines/onnx.ts')
    const e = await loadOnnxEngine({ modelPath: model, threads: 1, slots: 1 })
    await e.close()
  }
  return 0
}
