import type { Registry } from 'prom-client'

import type { Project } from '../../runtime/config/resolve.ts'
import type { HostLogger } from '../../runtime/hosts/local/observer.ts'
import { stateDir } from '../deploy/project-state.ts'
import { businessCalendar } from './calendar.ts'
import { localSpawner, PoolManager } from './manager.ts'
import { AiRouter } from './router.ts'

/** The running inference side of a host: the scaler (directory of pools) and the router behind `env.AI`. */
export interface RunningPools {
  manager: PoolManager
  router: AiRouter
  close(): Promise<void>
}

/**
 * Starts every `[[pools]]` pool at its floor (replicas are `sovra pool serve` child processes; `endpoints` pools are
 * polled), waits until they are warm, and starts the scaling loop. Returns undefined when the config has no pools.
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
  const manager = new PoolManager({
    pools: project.pools,
    calendar: businessCalendar({
      ...(cal?.weekend === undefined ? {} : { weekend: cal.weekend }),
      ...(cal?.holidays === undefined ? {} : { holidays: cal.holidays }),
    }),
    spawn: localSpawner({
      configFile: project.file,
      env: project.env,
      stateDir: stateDir(project, options.state),
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
