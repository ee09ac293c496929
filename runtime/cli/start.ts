import { watch } from 'node:fs'
import { loadConfig } from '../config/load.ts'
import { formatDiagnostic } from '../config/diagnostics.ts'
import { LocalHost, DEFAULT_HOSTNAME, DEFAULT_PORT } from '../hosts/local/host.ts'
import { watchFunctions } from '../hosts/local/reload.ts'
import { createLogger } from '../../infra/observe/logger.ts'
import { createPromMetrics } from '../../infra/observe/metrics.ts'
import { COMMON_OPTIONS, parseCommandArgs, parsePort } from './args.ts'
import type { Command, Io } from './command.ts'

const OPTIONS = {
  ...COMMON_OPTIONS,
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  'shutdown-grace-ms': { type: 'string' },
} as const

/**
 * Runs the embedded host until SIGTERM or SIGINT, then shuts down gracefully and resolves with exit code 0.
 * @param args command arguments
 * @param io where to write
 * @param dev whether to watch and reload
 */
async function serve(args: string[], io: Io, dev: boolean): Promise<number> {
  const usage = `sovra ${dev ? 'dev' : 'start'} [--config FILE] [--env NAME] [--port ${DEFAULT_PORT}] [--host ${DEFAULT_HOSTNAME}] [--shutdown-grace-ms 10000]`
  const { values } = parseCommandArgs(args, OPTIONS, usage)
  if (values.help) return io.out(usage), 0
  const port = parsePort(values.port, '--port', DEFAULT_PORT)
  const grace = parsePort(values['shutdown-grace-ms'] ?? '10000', '--shutdown-grace-ms', 10_000)
  const log = createLogger()
  const { project, warnings } = loadConfig({ configPath: values.config, env: values.env })
  for (const d of warnings) io.err(formatDiagnostic(d))
  const metrics = createPromMetrics()
  const host = await LocalHost.start({ project, log, metrics, port, hostname: values.host ?? DEFAULT_HOSTNAME })
  io.err(`sovra ${dev ? 'dev' : 'start'}: serving ${project.functions.map((f) => f.name).join(', ')} on ${host.url}`)
  let stopWatching: (() => Promise<void>) | undefined
  let configWatcher: ReturnType<typeof watch> | undefined
  if (dev) {
    stopWatching = await watchFunctions(host, project, log)
    configWatcher = watch(project.file, () => {
      log.warn({ file: project.file }, 'config changed: restart sovra dev to apply it (function code reloads by itself)')
    })
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutdown requested')
      resolve()
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
  configWatcher?.close()
  await stopWatching?.()
  await host.close(grace)
  await new Promise<void>((resolve) => log.flush(() => resolve()))
  return 0
}

/** `sovra start`: the embedded host. */
export const startCommand: Command = { usage: 'sovra start', run: (args, io) => serve(args, io, false) }
/** `sovra dev`: the embedded host, reloading functions on save. */
export const devCommand: Command = { usage: 'sovra dev', run: (args, io) => serve(args, io, true) }
