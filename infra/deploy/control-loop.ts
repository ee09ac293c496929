import { join } from 'node:path'

import type { Project } from '../../runtime/config/resolve.ts'
import type { Db } from '../../runtime/core/ports.ts'
import type { LocalHost } from '../../runtime/hosts/local/host.ts'
import { buildDir } from '../../runtime/hosts/local/functions.ts'
import type { HostLogger } from '../../runtime/hosts/local/observer.ts'
import type { VersionSource } from '../../runtime/hosts/local/versions.ts'
import { checkCanary, DEFAULT_ROLLOUT, type RolloutThresholds } from './canary-check.ts'
import { controlPlane } from './control-plane.ts'
import { loadTrust, openRegistry } from './project-state.ts'

/**
 * A function's canary thresholds from `rollout = {...}`, over the defaults.
 * @param project the project
 * @param fn the function
 */
export function thresholdsOf(project: Project, fn: string): RolloutThresholds {
  const r = project.functions.find((f) => f.name === fn)?.rollout ?? {}
  return {
    maxErrorRate: r.max_error_rate ?? DEFAULT_ROLLOUT.maxErrorRate,
    maxP95Ms: r.max_p95_ms ?? DEFAULT_ROLLOUT.maxP95Ms,
    minRequests: r.min_requests ?? DEFAULT_ROLLOUT.minRequests,
    windowS: r.window_s ?? DEFAULT_ROLLOUT.windowS,
  }
}

/**
 * Puts the host's deployed functions under the control plane: routing across versions (bundles verified against the
 * trust policy before they load), refreshed every `intervalMs`, and the canary controller run on the same tick.
 * Functions never deployed with `sovra deploy` keep serving their source until their first version (picked up on the
 * next tick). Returns a stop function with `sync()`: one tick now (the control endpoint calls it after a command).
 *
 * With `workingTree` (`sovra dev`) nothing is routed across versions: the source on disk serves, so a saved edit is
 * what answers, and the host says so once per deployed function instead of serving a deployed version while it logs
 * "function reloaded" (issue 11); a deploy or rollout made while it runs is logged as recorded, not routed.
 * @param host the running host
 * @param project the project
 * @param db the SQL store
 * @param options state folder, logger, tick, and whether the working tree wins (dev)
 */
export async function enableControlPlane(
  host: LocalHost,
  project: Project,
  db: Db,
  options: { state?: string | undefined; log: HostLogger; intervalMs?: number; workingTree?: boolean },
): Promise<(() => void) & { sync(): Promise<void> }> {
  const cp = controlPlane(db)
  if (options.workingTree === true) return workingTreeOnly(project, cp, options)
  const registry = openRegistry(project, options.state)
  const source: VersionSource = {
    routing: (fn) => cp.routing(fn),
    async bundle(versionId) {
      const v = await cp.version(versionId)
      if (v === undefined) throw new Error(`no version ${versionId}`)
      // Refuses unsigned, untrusted or tampered bundles (ERR_SIGNATURE) before anything runs.
      // The trust list as it is now: a key added while the host runs (sovra keys gen) counts at once.
      await registry.verify(`registry:${v.function}@sha256:${v.bundleSha256}`, 'bundle', loadTrust(project))
      const path = await registry.materialize(
        v.bundleSha256,
        join(buildDir(project), 'versions', `${v.function}.${v.bundleSha256.slice(0, 12)}.mjs`),
      )
      return { name: v.function, path, sha256: v.bundleSha256, version: versionId, bytes: 0 }
    },
  }
  const managed: string[] = []
  /** Routes a function across versions once it has any (its first deploy may come while the host runs). */
  const adopt = async (): Promise<string[]> => {
    const now: string[] = []
    for (const fn of project.functions) {
      if (managed.includes(fn.name) || (await cp.routing(fn.name)) === undefined) continue
      await host.functions.enableVersions(fn.name, source, options.log)
      managed.push(fn.name)
      now.push(fn.name)
    }
    return now
  }
  const adopted = await adopt()
  if (adopted.length > 0) options.log.info({ functions: adopted }, 'control plane: routing across versions')
  const tick = async (): Promise<void> => {
    const later = await adopt()
    if (later.length > 0) options.log.info({ functions: later }, 'control plane: routing across versions')
    for (const name of managed) {
      const versions = host.functions.get(name)?.versions
      if (versions === undefined) continue
      await versions.refresh()
      const verdict = await checkCanary(cp, name, thresholdsOf(project, name), async (v, w) => versions.stats(v, w))
      if (verdict?.verdict === 'rollback') {
        options.log.warn({ function: name, reason: verdict.reason }, 'canary rolled back automatically')
        await versions.refresh()
      }
    }
  }
  return everyTick(tick, options)
}

/**
 * Runs `tick` every `intervalMs` and on `sync()`, one at a time: the timer's and those the control endpoint asks for
 * after a command. A failed tick is logged; the next one runs.
 * @param tick one round
 * @param options logger and interval
 */
function everyTick(
  tick: () => Promise<void>,
  options: { log: HostLogger; intervalMs?: number },
): (() => void) & { sync(): Promise<void> } {
  let running = Promise.resolve()
  const sync = (): Promise<void> => {
    running = running
      .then(tick)
      .catch((e: unknown) => options.log.error({ err: (e as Error).message }, 'control plane tick failed'))
    return running
  }
  const timer = setInterval(() => void sync(), options.intervalMs ?? 5000)
  timer.unref()
  return Object.assign(() => clearInterval(timer), { sync })
}

/**
 * The control loop of `sovra dev`: routes nothing (the working tree serves) and logs, once per function, that its
 * deployed versions are not routed in dev; later deploys and rollouts are logged as recorded but not served.
 * @param project the project
 * @param cp the control plane
 * @param options logger and tick
 */
async function workingTreeOnly(
  project: Project,
  cp: ReturnType<typeof controlPlane>,
  options: { log: HostLogger; intervalMs?: number },
): Promise<(() => void) & { sync(): Promise<void> }> {
  const seen = new Map<string, string>()
  const tick = async (): Promise<void> => {
    const first: string[] = []
    for (const fn of project.functions) {
      const routing = await cp.routing(fn.name)
      if (routing === undefined) continue
      const key = JSON.stringify(routing)
      const before = seen.get(fn.name)
      seen.set(fn.name, key)
      if (before === undefined) first.push(fn.name)
      else if (before !== key)
        options.log.warn(
          { function: fn.name, stable: routing.stable, canary: routing.canary?.version },
          `routing of ${fn.name} changed (recorded); dev keeps serving the working tree`,
        )
    }
    if (first.length > 0)
      options.log.warn(
        { functions: first },
        `dev serves the working tree; deployed versions of ${first.join(', ')} are not routed in dev`,
      )
  }
  const loop = everyTick(tick, options)
  await loop.sync()
  return loop
}
