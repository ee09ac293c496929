import { join } from 'node:path'
import type { Project } from '../../config/resolve.ts'
import type { FunctionConfig } from '../../config/schema.ts'
import { buildEnvSpec, serveBindings } from '../../bindings/env.ts'
import type { HostServices } from '../../bindings/define.ts'
import type { FunctionBundle } from '../../isolate/bundle.ts'
import { bundleFunctions, type BundleProgress } from '../../isolate/bundle-all.ts'
import { IsolatePool, type PoolObserver, type PoolStats } from '../../isolate/pool.ts'
import { SpareIsolates } from '../../isolate/spares.ts'
import type { InvocationRecord } from '../../isolate/job.ts'
import { VersionedFunction, type VersionSource } from './versions.ts'
import type { HostLogger } from './observer.ts'

/** One function ready to run: its resolved config and its isolate pool. */
export interface LoadedFunction {
  config: FunctionConfig
  pool: IsolatePool
  /** Versions managed by the control plane (canary, pins), when enabled; `pool` serves otherwise. */
  versions?: VersionedFunction
  /** Starts another pool like `pool` for another bundle (a version). */
  makePool: (bundle: FunctionBundle, onInvocation?: (r: InvocationRecord) => void) => Promise<IsolatePool>
}

/** Options for {@link FunctionSet.load}. */
export interface FunctionSetOptions {
  /** Where bundles are written; default `<project>/.sovra/build`. */
  outDir?: string
  observer?: PoolObserver
  /** Only these functions (e.g. `sovra invoke echo`); default all. */
  only?: readonly string[]
  /** Overrides each function's isolate settings (e.g. a single isolate for `invoke`). */
  isolates?: Partial<FunctionConfig['isolates']>
  /** The services bindings are served by (bucket adapters, the inference router, ...). */
  services?: HostServices
  /** Build progress (a project with many functions takes a while to bundle). */
  onBuild?: (progress: BundleProgress) => void
}

/** The build folder of a project. */
export function buildDir(project: Project): string {
  return join(project.dir, '.sovra', 'build')
}

/**
 * The project's functions with their bundles and isolate pools: what the embedded host and `sovra invoke` run.
 *
 * @example
 * const set = await FunctionSet.load(project, { observer })
 * const res = await set.get('echo')?.pool.fetch(new Request('http://local/v1/echo'))
 * await set.close()
 */
export class FunctionSet {
  readonly #functions: Map<string, LoadedFunction>
  readonly #spares: SpareIsolates

  private constructor(functions: Map<string, LoadedFunction>, spares: SpareIsolates) {
    this.#functions = functions
    this.#spares = spares
  }

  /**
   * Bundles every function and starts its warm isolates. If one fails to build or load, the ones already started
   * are stopped and the error names the function.
   * @param project the resolved project
   * @param options build folder, observer, subset
   */
  static async load(project: Project, options: FunctionSetOptions = {}): Promise<FunctionSet> {
    const outDir = options.outDir ?? buildDir(project)
    const wanted = project.functions.filter((f) => options.only === undefined || options.only.includes(f.name))
    // Functions sharing an entry module share one build (issue 11, R10).
    const bundles = await bundleFunctions(wanted, outDir, { onProgress: options.onBuild })
    const map = new Map<string, LoadedFunction>()
    const spares = new SpareIsolates()
    const set = new FunctionSet(map, spares)
    try {
      await Promise.all(
        wanted.map(async (config, i) => {
          const fn = { ...config, isolates: { ...config.isolates, ...options.isolates } }
          const poolOptions = {
            name: fn.name,
            limits: fn.limits,
            isolates: fn.isolates,
            bundle: bundles[i] as FunctionBundle,
            env: buildEnvSpec(fn, project.secrets),
            spares,
            bindings: serveBindings(fn, options.services ?? {}),
            ...(options.observer === undefined ? {} : { observer: options.observer }),
          }
          const pool = new IsolatePool(poolOptions)
          const makePool = async (
            bundle: FunctionBundle,
            onInvocation?: (r: InvocationRecord) => void,
          ): Promise<IsolatePool> => {
            const observer =
              onInvocation === undefined
                ? options.observer
                : {
                    ...options.observer,
                    onInvocation: (r: InvocationRecord) => {
                      options.observer?.onInvocation?.(r)
                      onInvocation(r)
                    },
                  }
            const p = new IsolatePool({ ...poolOptions, bundle, ...(observer === undefined ? {} : { observer }) })
            await p.start()
            return p
          }
          map.set(fn.name, { config: fn, pool, makePool })
          await pool.start()
        }),
      )
    } catch (error) {
      await set.close(0)
      throw error
    }
    return set
  }

  /** @param name a function name */
  get(name: string): LoadedFunction | undefined {
    return this.#functions.get(name)
  }

  /**
   * Puts a function under the control plane: its requests are routed across versions (stable, canary, pins).
   * @param name the function
   * @param source routing and verified bundles
   * @param log where refused versions are reported
   */
  async enableVersions(name: string, source: VersionSource, log: HostLogger): Promise<VersionedFunction | undefined> {
    const fn = this.#functions.get(name)
    if (fn === undefined) return undefined
    const versions = new VersionedFunction(
      name,
      (bundle, onInvocation) => fn.makePool(bundle, onInvocation),
      source,
      log,
    )
    await versions.refresh()
    fn.versions = versions
    return versions
  }

  /** Every loaded function, in config order. */
  all(): LoadedFunction[] {
    return [...this.#functions.values()]
  }

  /** True when every function's warm minimum is ready. */
  get ready(): boolean {
    return this.all().every((f) => f.pool.ready)
  }

  /** Live numbers of every pool. */
  stats(): PoolStats[] {
    return this.all().map((f) => f.pool.stats())
  }

  /**
   * Stops every pool, letting in-flight invocations finish for up to `graceMs`.
   * @param graceMs how long to wait
   */
  async close(graceMs = 10_000): Promise<void> {
    await Promise.all(this.all().map((f) => Promise.all([f.pool.close(graceMs), f.versions?.close(graceMs)])))
    await this.#spares.close()
  }
}
