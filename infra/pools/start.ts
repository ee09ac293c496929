import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Registry } from 'prom-client'

import type { Project } from '../../runtime/config/resolve.ts'
import type { PoolConfig } from '../../runtime/config/pools.ts'
import type { Logger } from '../../runtime/core/observe.ts'
import type { HostLogger } from '../../runtime/hosts/local/observer.ts'
import { stateDir } from '../deploy/project-state.ts'
import { businessCalendar } from './calendar.ts'
import { materializeTinyModel, tinyModelPath } from './load-engine.ts'
import { localSpawner, PoolManager } from './manager.ts'
import { AiRouter } from './router.ts'

/** The running inference side of a host: the scaler (directory of pools) and the router behind `env.AI`. */
export interface RunningPools {
  manager: PoolManager
  router: AiRouter
  close(): Promise<void>
}

/**
 * Generates the demo models the pools use (`tiny:` references) that are not there yet, once, before any replica
 * starts: N replicas would otherwise each generate the same model at the same time. Logs a line before and after
 * each one it generates (the first `sovra start` spends seconds here).
 * @param pools the resolved pools
 * @param modelsDir the state folder's `models/`
 * @param log where progress goes
 */
export async function prepareTinyModels(pools: readonly PoolConfig[], modelsDir: string, log: Logger): Promise<void> {
  const refs = new Set(pools.filter((p) => p.model.startsWith('tiny:')).map((p) => p.model))
  for (const ref of refs) {
    const path = tinyModelPath(ref, modelsDir)
    if (existsSync(path)) continue
    const started = performance.now()
    log.info({ model: ref, path }, `generating tiny model ${ref}...`)
    await materializeTinyModel(ref, modelsDir)
    const ms = Math.round(performance.now() - started)
    log.info({ model: ref, path, ms }, `tiny model ${ref} generated in ${ms} ms`)
  }
}

/**
 * Starts every `[[pools]]` pool at its floor (replicas are `sovra pool serve` child processes; `endpoints` pools are
 * polled), waits until they are warm, and starts the scaling loop. Returns undefined when the config has no pools.
 * Progress goes to `log`: a line per tiny model generated, per replica warming and per replica warm.
 * @param project the resolved project
 * @param options state folder override, logger, metrics registry, and where replica log lines go
 */
export async function startPools(
  project: Project,
  options: {
    state?: string | undefined
    log: HostLogger
    registry?: Registry
    onLog?: (line: string) => void
    tickMs?: number
  },
): Promise<RunningPools | undefined> {
  if (project.pools.length === 0) return undefined
  const cal = project.config.calendar
  const state = stateDir(project, options.state)
  await prepareTinyModels(project.pools, join(state, 'models'), options.log)
  const manager = new PoolManager({
    pools: project.pools,
    calendar: businessCalendar({
      ...(cal?.weekend === undefined ? {} : { weekend: cal.weekend }),
      ...(cal?.holidays === undefined ? {} : { holidays: cal.holidays }),
    }),
    spawn: localSpawner({
      configFile: project.file,
      env: project.env,
      stateDir: state,
      onLog: options.onLog ?? ((line) => void process.stdout.write(`${line}\n`)),
    }),
    log: options.log,
    ...(options.registry === undefined ? {} : { registry: options.registry }),
  })
  try {
    await manager.start()
  } catch (e) {
    await manager.close(0)
    throw e
  }
  manager.run(options.tickMs ?? 1000)
  return { manager, router: new AiRouter(manager, project.tiers, options.log), close: () => manager.close() }
}
