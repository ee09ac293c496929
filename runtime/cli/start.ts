import { existsSync, watch } from 'node:fs'
import { join } from 'node:path'
import { loadConfig } from '../config/load.ts'
import { ConfigError, formatDiagnostic } from '../config/diagnostics.ts'
import type { Project } from '../config/resolve.ts'
import { LocalHost, DEFAULT_HOSTNAME, DEFAULT_PORT } from '../hosts/local/host.ts'
import { lateSink } from '../hosts/local/object-events.ts'
import { watchFunctions } from '../hosts/local/reload.ts'
import { createBucketProvider, stateDir } from './storage.ts'
import { enableControlPlane } from './versions.ts'
import { needsStore, openStore } from './store.ts'
import { startPools } from './ai.ts'
import { dbCronStore } from '../../infra/db/cron-store.ts'
import { dbEventQueue } from '../../infra/db/event-queue.ts'
import { createLogger } from '../../infra/observe/logger.ts'
import { createPromMetrics } from '../../infra/observe/metrics.ts'
import { COMMON_OPTIONS, parseCommandArgs, parseCount, parsePort } from './args.ts'
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
  const grace = parseCount(values['shutdown-grace-ms'], '--shutdown-grace-ms', 10_000)
  const log = createLogger()
  const hostname = values.host ?? DEFAULT_HOSTNAME
  const load = () => {
    const loaded = loadConfig({ configPath: values.config, env: values.env })
    for (const d of loaded.warnings) io.err(formatDiagnostic(d))
    return loaded.project
  }

  /** Starts the host (and, in dev, the source watchers); resolves to a function that stops both. */
  const launch = async (project: Project, listenPort: number): Promise<{ port: number; stop: (graceMs: number) => Promise<void> }> => {
    const stateOpt = values.state === undefined ? {} : { state: values.state }
    // The store also holds the control plane's versions once something was deployed with `sovra deploy`.
    const hasStore = needsStore(project) || existsSync(join(stateDir(project, values.state), 'db')) || (process.env['SOVRA_DATABASE_URL'] ?? project.config.database?.url) !== undefined
    const db = hasStore ? await openStore(project, stateOpt) : undefined
    const hasObjectTriggers = project.functions.some((f) => (f.worker.object_triggers?.length ?? 0) > 0)
    // fs bucket writes become object events; the host exists only after the buckets, hence the late reference.
    const ref: { host?: LocalHost } = {}
    const buckets = createBucketProvider(project, {
      ...stateOpt,
      sink: lateSink(() => ref.host?.events?.sink()),
    })
    let host: LocalHost
    const metrics = createPromMetrics()
    let pools: Awaited<ReturnType<typeof startPools>>
    try {
      // Pools first: functions that bind env.AI load against warm replicas.
      pools = await startPools(project, { state: values.state, log, registry: metrics.registry })
      host = await LocalHost.start({
        project, log, metrics, port: listenPort, hostname, buckets,
        ...(db === undefined ? {} : { crons: { store: dbCronStore(db) } }),
        ...(db !== undefined && hasObjectTriggers ? { events: { queue: dbEventQueue(db) } } : {}),
        ...(pools === undefined ? {} : { ai: pools.router, pools: pools.manager }),
      })
      ref.host = host
    } catch (error) {
      await pools?.close()
      await db?.close()
      throw error
    }
    const stopControlPlane = db === undefined ? undefined : await enableControlPlane(host, project, db, { state: values.state, log })
    const poolNote = pools === undefined ? '' : `; pools ${project.pools.map((p) => p.name).join(', ')}`
    io.err(`sovra ${dev ? 'dev' : 'start'}: serving ${project.functions.map((f) => f.name).join(', ')} on ${host.url}${poolNote}`)
    const stopWatching = dev ? await watchFunctions(host, project, log) : undefined
    return {
      port: Number(new URL(host.url).port),
      stop: async (graceMs) => {
        await stopWatching?.()
        stopControlPlane?.()
        await host.close(graceMs)
        await pools?.close()
        await db?.close()
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
        restarting = restarting.then(async () => {
          let next: Project
          try {
            next = load()
          } catch (error) {
            if (error instanceof ConfigError) for (const d of error.diagnostics) io.err(formatDiagnostic(d))
            log.error({ file: project.file, error: (error as Error).message }, 'config change rejected; still serving the previous config')
            return
          }
          await running.stop(5000)
          running = await launch(next, running.port)
          log.info({ file: project.file }, 'config reloaded')
        }).catch((error: unknown) => log.error({ error: String(error) }, 'restart after config change failed'))
      }, 100)
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
  await running.stop(grace)
  await new Promise<void>((resolve) => log.flush(() => resolve()))
  return 0
}

/** `sovra start`: the embedded host. */
export const startCommand: Command = { usage: 'sovra start', run: (args, io) => serve(args, io, false) }
/** `sovra dev`: the embedded host, reloading functions on save. */
export const devCommand: Command = { usage: 'sovra dev', run: (args, io) => serve(args, io, true) }
