import { watch } from 'node:fs'
import { loadConfig } from '../config/load.ts'
import { ConfigError, formatDiagnostic } from '../config/diagnostics.ts'
import type { Project } from '../config/resolve.ts'
import { LocalHost, DEFAULT_HOSTNAME, DEFAULT_PORT } from '../hosts/local/host.ts'
import { lateSink } from '../hosts/local/object-events.ts'
import { watchFunctions } from '../hosts/local/reload.ts'
import { hostFilePath, writeHostFile } from './host-file.ts'
import { hostControl } from './host-control.ts'
import { assemble } from '../../infra/deploy/assemble.ts'
import { stateDir } from '../../infra/deploy/project-state.ts'
import { createLogger } from '../../infra/observe/logger.ts'
import { LogStore, logsDir } from '../../infra/observe/log-store.ts'
import { logsAdmin } from './logs-app.ts'
import { createPromMetrics } from '../../infra/observe/metrics.ts'
import { COMMON_OPTIONS, parseCommandArgs, parseCount, parsePort, resolveHost } from './args.ts'
import type { Command, Io } from './command.ts'
import { onShutdownSignals } from './signals.ts'

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
  const usage = usageOf(dev)
  const { values } = parseCommandArgs(args, OPTIONS, usage)
  if (values.help) return (io.out(usage), 0)
  const port = parsePort(values.port, '--port', DEFAULT_PORT)
  const grace = parseCount(values['shutdown-grace-ms'], '--shutdown-grace-ms', 10_000)
  const hostname = await resolveHost(values.host, '--host', DEFAULT_HOSTNAME)
  // The functions' log lines, kept for `sovra logs` (memory and <state>/logs) as the logger writes them.
  const logs = new LogStore()
  const log = createLogger({ tap: logs })
  const load = () => {
    const loaded = loadConfig({ configPath: values.config, env: values.env })
    for (const d of loaded.warnings) io.err(formatDiagnostic(d))
    return loaded.project
  }

  /** Starts the host (and, in dev, the source watchers); resolves to a function that stops both. */
  const launch = async (
    project: Project,
    listenPort: number,
  ): Promise<{ port: number; stop: (graceMs: number) => Promise<void> }> => {
    // fs bucket writes become object events; the host exists only after the buckets, hence the late reference.
    const ref: { host?: LocalHost } = {}
    const metrics = createPromMetrics()
    const parts = await assemble(project, {
      state: values.state,
      log,
      metrics: metrics.registry,
      sink: lateSink(() => ref.host?.events?.sink()),
    })
    // The control plane the CLI's deploy, rollout, approve, audit and keys run at while this host holds the state.
    // In dev the working tree wins: deployed versions are not routed, or a saved edit would answer nothing (issue 11).
    const control = hostControl({ project, state: values.state, db: parts.db, log, workingTree: dev })
    let host: LocalHost
    try {
      const state = stateDir(project, values.state)
      logs.open(logsDir(state))
      host = await LocalHost.start({
        project,
        log,
        metrics,
        port: listenPort,
        hostname,
        state,
        ...parts.hostOptions(),
        admin: [control.admin, logsAdmin({ project, store: logs })],
      })
      ref.host = host
    } catch (error) {
      await parts.close()
      throw error
    }
    const { pools } = parts
    await control.attach(host)
    // CLI commands find this host through the file (any port), not only at the default address. Written before the
    // "serving" line, so whoever reads that line finds the file.
    const removeHostFile = writeHostFile(hostFilePath(project, values.state), host.url)
    const poolNote = pools === undefined ? '' : `; pools ${project.pools.map((p) => p.name).join(', ')}`
    io.err(
      `sovra ${dev ? 'dev' : 'start'}: serving ${project.functions.map((f) => f.name).join(', ')} on ${host.url}${poolNote}`,
    )
    const stopWatching = dev ? await watchFunctions(host, project, log) : undefined
    return {
      port: Number(new URL(host.url).port),
      stop: async (graceMs) => {
        // Open `sovra logs --follow` responses end first: they would hold the drain for the whole grace.
        logs.close()
        removeHostFile()
        await stopWatching?.()
        await control.stop()
        await host.close(graceMs)
        await parts.close()
      },
    }
  }

  const project = load()
  let running = await launch(project, port)
  let configWatcher: ReturnType<typeof watch> | undefined
  if (dev) {
    // A config change restarts the host in place (same port) once the new config is valid; an invalid one is
    // reported and the running host stays.
    let pending: NodeJS.Timeout | undefined
    let restarting = Promise.resolve()
    configWatcher = watch(project.file, () => {
      clearTimeout(pending)
      pending = setTimeout(() => {
        restarting = restarting
          .then(async () => {
            let next: Project
            try {
              next = load()
            } catch (error) {
              if (error instanceof ConfigError) for (const d of error.diagnostics) io.err(formatDiagnostic(d))
              log.error(
                { file: project.file, error: (error as Error).message },
                'config change rejected; still serving the previous config',
              )
              return
            }
            await running.stop(5000)
            running = await launch(next, running.port)
            log.info({ file: project.file }, 'config reloaded')
          })
          .catch((error: unknown) => log.error({ error: String(error) }, 'restart after config change failed'))
      }, 100)
    })
  }
  // The first SIGTERM or SIGINT drains; a second SIGTERM is logged and keeps draining; SIGINT twice or a third
  // signal forces the exit (runtime/cli/signals.ts).
  const signals = onShutdownSignals(log)
  await signals.requested
  configWatcher?.close()
  await running.stop(grace)
  signals.dispose()
  await new Promise<void>((resolve) => log.flush(() => resolve()))
  return 0
}

function usageOf(dev: boolean): string {
  return `sovra ${dev ? 'dev' : 'start'} [--config FILE] [--env NAME] [--state DIR] [--port ${DEFAULT_PORT}] [--host ${DEFAULT_HOSTNAME}] [--shutdown-grace-ms 10000]`
}

/** `sovra start`: the embedded host. */
export const startCommand: Command = { usage: usageOf(false), run: (args, io) => serve(args, io, false) }
/** `sovra dev`: the embedded host, reloading functions on save; it always serves the working tree. */
export const devCommand: Command = { usage: usageOf(true), run: (args, io) => serve(args, io, true) }
