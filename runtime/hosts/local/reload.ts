import * as esbuild from 'esbuild'
import { buildError, bundleOptions, writeBundle } from '../../isolate/bundle.ts'
import { buildDir } from './functions.ts'
import type { Project } from '../../config/resolve.ts'
import type { LocalHost } from './host.ts'
import type { HostLogger } from './observer.ts'

/** What a reload did, for logs and tests. */
export interface ReloadEvent {
  function: string
  ok: boolean
  version?: string
  error?: string
}

/**
 * Watches every function's sources (esbuild follows the real import graph) and reloads the function when they
 * change: the new bundle's isolates start first, then new requests go to them while the old ones finish theirs.
 * A bundle that fails to build or load is reported and the old one keeps serving.
 * @param host the running host
 * @param project its project
 * @param log where to report
 * @param onReload called after every attempt
 * @returns a function that stops watching
 */
export async function watchFunctions(
  host: LocalHost,
  project: Project,
  log: HostLogger,
  onReload: (e: ReloadEvent) => void = () => undefined,
): Promise<() => Promise<void>> {
  const outDir = buildDir(project)
  const contexts = await Promise.all(
    host.functions.all().map(async (loaded) => {
      const { config, pool } = loaded
      let first = true
      let current = pool.bundle.sha256
      const reloader: esbuild.Plugin = {
        name: 'sovra-reload',
        setup(build) {
          build.onEnd(async (result) => {
            // The first build is the one the host already runs.
            if (first) {
              first = false
              return
            }
            if (result.errors.length > 0) {
              const error = buildError(config.name, { errors: result.errors }, project.dir).message
              log.error({ function: config.name, error }, 'rebuild failed; still serving the previous version')
              return onReload({ function: config.name, ok: false, error })
            }
            const out = result.outputFiles?.[0]
            if (out === undefined) return
            const bundle = writeBundle(config.name, out.contents, outDir)
            if (bundle.sha256 === current) return
            try {
              await pool.reload(bundle)
              current = bundle.sha256
              // A function routed across deployed versions does not serve its source: say so rather than let the
              // save look applied (issue 11; `sovra dev` routes no versions, so this is for other embedders).
              const routed = loaded.versions?.state
              if (routed === undefined)
                log.info({ function: config.name, version: bundle.version }, 'function reloaded')
              else
                log.warn(
                  { function: config.name, version: bundle.version, stable: routed.stable },
                  `function reloaded, but ${config.name}'s requests go to its deployed versions (stable ${routed.stable}), not to this build`,
                )
              onReload({ function: config.name, ok: true, version: bundle.version })
            } catch (error) {
              const message = error instanceof Error ? error.message : String(error)
              log.error({ function: config.name, error: message }, 'reload failed; still serving the previous version')
              onReload({ function: config.name, ok: false, error: message })
            }
          })
        },
      }
      const options = bundleOptions(config.main)
      const ctx = await esbuild.context({ ...options, plugins: [...(options.plugins ?? []), reloader] })
      await ctx.watch()
      return ctx
    }),
  )
  return async () => {
    await Promise.all(contexts.map((c) => c.dispose()))
  }
}
