import { loadConfig } from '../config/load.ts'
import { isSovraError, SovraError } from '../core/errors.ts'
import { audit } from '../../infra/deploy/project-state.ts'
import { probeModel, runReplica } from '../../infra/pools/run-replica.ts'
import { COMMON_OPTIONS, parseCommandArgs, parseCount, parseHost, parsePort } from './args.ts'
import type { Command } from './command.ts'

const USAGE =
  'sovra pool serve --pool NAME [--port N] [--host H] [--replica ID] [--config FILE] | sovra pool probe --engine llama|onnx --model FILE'
const OPTIONS = {
  ...COMMON_OPTIONS,
  pool: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  replica: { type: 'string' },
  engine: { type: 'string' },
  model: { type: 'string' },
  'drain-ms': { type: 'string' },
} as const

/** `sovra pool serve`: one long-running inference replica; `sovra pool probe`: load a model file and exit 0. */
export const poolCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const [sub, ...rest] = args
    const { values } = parseCommandArgs(rest, OPTIONS, USAGE)
    if (values.help || sub === undefined) return (io.out(USAGE), sub === undefined ? 2 : 0)
    if (sub === 'probe') return probeModel(values.engine, values.model, USAGE)
    if (sub !== 'serve')
      throw new SovraError(
        'ERR_USAGE',
        `unknown subcommand ${JSON.stringify(sub)}; valid: serve, probe\nusage: ${USAGE}`,
      )
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const pool = project.pools.find((p) => p.name === values.pool)
    if (pool === undefined) {
      const names = project.pools.map((p) => p.name)
      throw new SovraError(
        'ERR_USAGE',
        `--pool: ${values.pool === undefined ? 'required' : `unknown pool ${JSON.stringify(values.pool)}`}; pools in ${project.file}: ${names.length ? names.join(', ') : '(none: add a [[pools]] table)'}`,
      )
    }
    const parent = Number(process.env['SOVRA_PARENT_PID'])
    const replica = values.replica ?? `${pool.name}-${process.pid}`
    try {
      return await runReplica({
        project,
        pool,
        state: values.state,
        replica,
        hostname: parseHost(values.host, '--host', '127.0.0.1'),
        port: parsePort(values.port, '--port', 8400),
        drainMs: parseCount(values['drain-ms'], '--drain-ms', 30_000),
        parentPid: Number.isInteger(parent) && parent > 0 ? parent : undefined,
      })
    } catch (e) {
      // A registry model that fails verification is a refused signature, audited as `sovra models verify` does
      // (issue 11, R5); the refusal itself still ends the replica.
      if (
        pool.model.startsWith('registry:') &&
        isSovraError(e) &&
        (e.code === 'ERR_SIGNATURE' || e.code === 'ERR_NOT_FOUND')
      )
        await audit(project, values.state, {
          action: 'signature.refused',
          subject: pool.model,
          reason: e.message,
          details: { pool: pool.name, replica },
        }).catch((x: unknown) =>
          io.err(`sovra pool: the refusal could not be recorded in the audit log: ${(x as Error).message}`),
        )
      throw e
    }
  },
}
