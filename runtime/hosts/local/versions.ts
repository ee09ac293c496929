import { SovraError } from '../../core/errors.ts'
import type { FunctionBundle } from '../../isolate/bundle.ts'
import type { InvocationRecord } from '../../isolate/job.ts'
import type { IsolatePool, PoolStats } from '../../isolate/pool.ts'
import { selectVersion, type RoutingState } from '../../../triggers/http/version-select.ts'
import { OutcomeWindows, type OutcomeSummary } from '../../../triggers/http/outcome-window.ts'
import type { HostLogger } from './observer.ts'

/** Where a host reads routing and gets (verified) version bundles: the control plane and the registry. */
export interface VersionSource {
  routing(fn: string): Promise<RoutingState | undefined>
  /** The bundle of a version, signature and digest verified; `version` of the result is the version id. */
  bundle(versionId: string): Promise<FunctionBundle>
}

/** One loaded version as `GET /_sovra/functions` shows it. */
export interface LoadedVersion {
  version: string
  /** The bundle's sha256 (verified against the signed manifest before it loaded). */
  sha256: string
  stats: PoolStats | null
}

/** The routing a host applies to one function, with the loaded versions it sends requests to. */
export interface RoutedVersions {
  stable: LoadedVersion
  canary: (LoadedVersion & { weight: number }) | null
  pins: Array<LoadedVersion & { attribute: string; value: string }>
}

/**
 * The versions of one function a host serves: a pool per referenced version (stable, canary, pins), the routing
 * decision per request (deterministic by request id), and per-version outcomes for the canary controller. A version
 * whose bundle fails verification is never routed to: the previous routing stays and the failure is logged.
 */
export class VersionedFunction {
  #state: RoutingState | undefined
  readonly #pools = new Map<string, IsolatePool>()
  readonly #outcomes = new OutcomeWindows()

  /**
   * @param name the function
   * @param makePool starts a pool for a bundle (same limits, env and bindings as the function's own)
   * @param source routing and bundles
   * @param log where refusals are reported
   */
  constructor(
    readonly name: string,
    private readonly makePool: (
      bundle: FunctionBundle,
      onInvocation: (r: InvocationRecord) => void,
    ) => Promise<IsolatePool>,
    private readonly source: VersionSource,
    private readonly log: HostLogger,
  ) {}

  /** The routing in force, if the control plane manages this function. */
  get state(): RoutingState | undefined {
    return this.#state
  }

  /** Reads the routing and starts pools for versions it references (verifying each bundle first); stops unused ones. */
  async refresh(): Promise<void> {
    const next = await this.source.routing(this.name)
    if (next === undefined) return
    const wanted = new Set([
      next.stable,
      ...(next.canary ? [next.canary.version] : []),
      ...next.pins.map((p) => p.version),
    ])
    for (const v of wanted) {
      if (this.#pools.has(v)) continue
      try {
        const bundle = await this.source.bundle(v)
        this.#pools.set(v, await this.makePool(bundle, (r) => this.#record(r)))
      } catch (e) {
        this.log.error({ function: this.name, version: v, err: (e as Error).message }, 'version refused: not routed to')
        if (v === next.stable) return // keep the routing that works
        if (next.canary?.version === v) next.canary = undefined
        next.pins = next.pins.filter((p) => p.version !== v)
      }
    }
    this.#state = next
    for (const [v, pool] of this.#pools) {
      if (!wanted.has(v)) {
        this.#pools.delete(v)
        void pool.close(10_000)
      }
    }
  }

  /**
   * The pool for one invocation: HTTP requests pass their request id; triggers pass none and get stable (or a pin).
   * @param requestId the request id (`x-request-id`, else the invocation id)
   * @param attributes caller attributes pins match on
   */
  pick(
    requestId: string | undefined,
    attributes: Readonly<Record<string, string | undefined>>,
  ): IsolatePool | undefined {
    if (this.#state === undefined) return undefined
    const pool = this.#pools.get(selectVersion(this.#state, { requestId, attributes }).version)
    if (pool === undefined)
      throw new SovraError('ERR_OVERLOADED', `function "${this.name}": the selected version is not loaded yet`, {
        details: { retry_after: 1 },
      })
    return pool
  }

  /** The routing in force with each routed version's bundle digest and pool numbers; null before the first routing. */
  describe(): RoutedVersions | null {
    const state = this.#state
    if (state === undefined) return null
    const loaded = (version: string): LoadedVersion => {
      const pool = this.#pools.get(version)
      return { version, sha256: pool?.bundle.sha256 ?? '', stats: pool?.stats() ?? null }
    }
    return {
      stable: loaded(state.stable),
      canary: state.canary === undefined ? null : { ...loaded(state.canary.version), weight: state.canary.weight },
      pins: state.pins.map((p) => ({ attribute: p.attribute, value: p.value, ...loaded(p.version) })),
    }
  }

  #record(r: InvocationRecord): void {
    this.#outcomes.add(r.invocation.version, r.durationMs, r.status)
  }

  /**
   * A version's requests, errors (status >= 500) and p95 over the last `windowS` seconds.
   * @param version the version id
   * @param windowS the window
   */
  stats(version: string, windowS: number): OutcomeSummary {
    return this.#outcomes.summary(version, windowS)
  }

  /** Stops every version's pool. */
  async close(graceMs = 10_000): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.close(graceMs)))
    this.#pools.clear()
  }
}
