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
 * Functions never deployed with `sovra deploy` keep serving their source. Returns a stop function.
 * @param host the running host
 * @param project the project
 * @param db the SQL store
 * @param options state folder, logger, tick
 */
export async function enableControlPlane(
  host: LocalHost,
  project: Project,
  db: Db,
  options: { state?: string | undefined; log: HostLogger; intervalMs?: number },
): Promise<() => void> {
  const cp = controlPlane(db)
  const registry = openRegistry(project, options.state)
  const trust = loadTrust(project)
  const source: VersionSource = {
    routing: (fn) => cp.routing(fn),
    async bundle(versionId) {
      const v = await cp.version(versionId)
      if (v === undefined) throw new Error(`no version ${versionId}`)
      // Refuses unsigned, untrusted or tampered bundles (ERR_SIGNATURE) before anything runs.
      await registry.verify(`registry:${v.function}@sha256:${v.bundleSha256}`, 'bundle', trust)
      const path = await registry.materialize(
        v.bundleSha256,
        join(buildDir(project), 'versions', `${v.function}.${v.bundleSha256.slice(0, 12)}.mjs`),
      )
      return { name: v.function, path, sha256: v.bundleSha256, version: versionId, bytes: 0 }
    },
  }
  const managed: string[] = []
  for (const fn of project.functions) {
    if ((await cp.routing(fn.name)) === undefined) continue
    await host.functions.enableVersions(fn.name, source, options.log)
    managed.push(fn.name)
  }
  if (managed.length > 0) options.log.info({ functions: managed }, 'control plane: routing across versions')
  const timer = setInterval(() => {
    void (async () => {
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
    })().catch((e: unknown) => options.log.error({ err: (e as Error).message }, 'control plane tick failed'))
  }, options.intervalMs ?? 5000)
  timer.unref()
  return () => clearInterval(timer)
}
