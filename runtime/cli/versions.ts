import { join } from 'node:path'

import type { Project } from '../config/resolve.ts'
import type { Db } from '../core/ports.ts'
import type { LocalHost } from '../hosts/local/host.ts'
import { buildDir } from '../hosts/local/functions.ts'
import type { HostLogger } from '../hosts/local/observer.ts'
import type { VersionSource } from '../hosts/local/versions.ts'
import { checkCanary, DEFAULT_ROLLOUT, type RolloutThresholds } from '../../infra/deploy/canary-check.ts'
import { controlPlane } from '../../infra/deploy/control-plane.ts'
import { loadTrust, openRegistry } from './registry.ts'

/**
 * A function's canary thresholds from `rollout = {...}`, over the defaults.
 * @param project the project
 * @param fn the function
 */
export function thresholdsOf(project: Project, fn: string): RolloutThresholds {
  const r = project.functions.find((f) => f.name === fn)?.worker.rollout ?? {}
  return {
    maxErrorRate: r.max_error_rate ?? DEFAULT_ROLLOUT.maxErrorRate, maxP95Ms: r.max_p95_ms ?? DEFAULT_ROLLOUT.maxP95Ms,
    minRequests: r.min_requests ?? DEFAULT_ROLLOUT.minRequests, windowS: r.window_s ?? DEFAULT_ROLLOUT.windowS,
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
export async function enableControlPlane(host: LocalHost, project: Project, db: Db, options: { state?: string | undefined; log: HostLogger; intervalMs?: number }): Promise<() => void> {
  const cp = controlPlane(db)
  const registry = openRegistry(project, options.state)
  const trust = loadTrust(project)
  const source: VersionSource = {
    routing: (fn) => cp.routing(fn),
    async bundle(versionId) {
      const row = (await db.query<{ function: string; bundle_sha256: string }>('SELECT function, bundle_sha256 FROM sovra_versions WHERE id = $1', [versionId])).rows[0]
      if (row === undefined) throw new Error(`no version ${versionId}`)
      // Refuses unsigned, untrusted or tampered bundles (ERR_SIGNATURE) before anything runs.
      await registry.verify(`registry:${row.function}@sha256:${row.bundle_sha256}`, 'bundle', trust)
      const path = await registry.materialize(row.bundle_sha256, join(buildDir(project), 'versions', `${row.function}.${row.bundle_sha256.slice(0, 12)}.mjs`))
      return { name: row.function, path, sha256: row.bundle_sha256, version: versionId, bytes: 0 }
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
