import { existsSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { DEFAULT_TIERS, TierOrder } from '../core/tiers.ts'
import { isSovraError, SovraError } from '../core/errors.ts'
import { normalizeRoute, RouteTable } from '../../triggers/http/route-table.ts'
import { parseSchedule } from '../../triggers/cron/schedule.ts'
import { DEFAULT_ISOLATES, DEFAULT_LIMITS, type Config, type FunctionConfig, type Worker } from './schema.ts'
import { show, type Diagnostic } from './diagnostics.ts'
import type { SecretStore } from './secrets.ts'
import { resolvePools, type PoolConfig } from './pools.ts'
import { resolveAuth, type AuthSettings } from '../auth/settings.ts'
import { BINDINGS, type Binding } from '../bindings/registry.ts'
import type { ResolveContext } from '../bindings/define.ts'

/** Paths under this prefix belong to the admin API, never to functions. */
export const ADMIN_PREFIX = '/_sovra/'

/** The default tier of a function that declares none. */
export const DEFAULT_FUNCTION_TIER = 'internal'

/** A resolved project: what hosts run. */
export interface Project {
  /** Absolute path of the config file. */
  file: string
  /** Folder of the config file; relative paths in it resolve from here. */
  dir: string
  name: string
  /** The applied `[env.NAME]`, if any. */
  env: string | undefined
  tiers: TierOrder
  functions: FunctionConfig[]
  /** Inference pools (`[[pools]]`). */
  pools: PoolConfig[]
  secrets: SecretStore
  /** The validated document with the environment applied, for capabilities that read their own tables. */
  config: Config
  /** How callers become principals (`[auth]`, or the deprecated `[gateway]` table mapped onto it). */
  auth: AuthSettings
}

// Keys wrangler does not inherit from the top level into an environment (they must be restated per env).
// Ref: https://developers.cloudflare.com/workers/wrangler/environments/ ("non-inheritable keys").
const NON_INHERITABLE = ['vars', 'r2_buckets', 'vectorize', 'ai', 'services', 'bindings'] as const

/**
 * Resolves a validated config into functions: applies `[env.NAME]`, lets each `[[functions]]` entry inherit the
 * top level, fills defaults, makes paths absolute, checks routes, tiers, entry files and required secrets.
 * @param config the validated document
 * @param options the file it came from, the environment to apply and the secrets available
 */
export function resolveProject(
  config: Config,
  options: { file: string; env: string | undefined; secrets: SecretStore },
): { project: Project; diagnostics: Diagnostic[] } {
  const { file, secrets } = options
  const dir = dirname(file)
  const diagnostics: Diagnostic[] = []
  const error = (path: string, message: string): void =>
    void diagnostics.push({ severity: 'error', file, path, message })
  const warn = (path: string, message: string): void =>
    void diagnostics.push({ severity: 'warning', file, path, message })

  let top: Config = config
  if (options.env !== undefined) {
    const envs = config.env ?? {}
    const overlay = envs[options.env]
    if (overlay === undefined) {
      const names = Object.keys(envs)
      error(
        'env',
        `unknown environment ${show(options.env)}; ${names.length ? `valid environments are: ${names.join(', ')}` : 'the config declares no [env.NAME] tables'}`,
      )
    } else {
      const base: Record<string, unknown> = { ...config }
      for (const k of NON_INHERITABLE) delete base[k]
      top = { ...base, ...overlay } as Config
    }
  }

  const tierNames = top.tiers?.order ?? [...DEFAULT_TIERS]
  let tiers = new TierOrder()
  try {
    tiers = new TierOrder(tierNames)
  } catch (e) {
    error('tiers.order', isSovraError(e) ? e.message : String(e))
  }
  const defaultTier =
    top.tiers?.default ??
    (tierNames.includes(DEFAULT_FUNCTION_TIER) ? DEFAULT_FUNCTION_TIER : (tierNames[0] ?? DEFAULT_FUNCTION_TIER))

  const {
    functions: entries,
    env: _env,
    tiers: _t,
    pools: _p,
    calendar: _c,
    gateway: _gw,
    trust: _tr,
    storage: _s,
    database: _d,
    targets: _g,
    $schema: _schema,
    ...inherited
  } = top
  let workers: Array<{ worker: Worker; path: string }>
  if (entries !== undefined && entries.length > 0) {
    if (config.main !== undefined)
      warn('main', 'top-level main is ignored when [[functions]] entries exist; give each entry its own main')
    workers = entries.map((entry, i) => ({
      worker: { ...inherited, main: undefined, ...entry } as Worker,
      path: `functions[${i}]`,
    }))
  } else if (top.main === undefined && (top.pools?.length ?? 0) > 0) {
    // A pools-only config (a GPU node running `sovra pool serve`) has no functions.
    workers = []
  } else {
    workers = [{ worker: inherited as Worker, path: '' }]
  }

  const resolved = resolvePools(top.pools ?? [], { dir, file, tiers, defaultTier })
  diagnostics.push(...resolved.diagnostics)
  const poolNames = resolved.pools.map((p) => p.name)

  const functions: FunctionConfig[] = []
  const routes: Array<{ pattern: string; target: string }> = []
  const seenNames = new Set<string>()
  for (const { worker, path } of workers) {
    const at = (key: string): string => (path === '' ? key : `${path}.${key}`)
    if (worker.name === undefined) {
      error(at('name'), 'expected a function name (e.g. name = "echo"), received nothing')
      continue
    }
    if (seenNames.has(worker.name))
      error(at('name'), `duplicate function name ${show(worker.name)}; each function needs its own name`)
    seenNames.add(worker.name)
    if (worker.main === undefined) {
      error(
        at('main'),
        `expected the path of function ${show(worker.name)}'s entry module (e.g. main = "functions/${worker.name}/index.ts"), received nothing`,
      )
      continue
    }
    const main = resolve(dir, worker.main)
    if (!existsSync(main)) error(at('main'), `entry module not found: ${main} (from main = ${show(worker.main)})`)

    const fnRoutes: string[] = []
    const routeInputs = [...(worker.routes ?? []), ...(worker.route === undefined ? [] : [worker.route])]
    routeInputs.forEach((r, i) => {
      try {
        const { pattern, droppedHost } = normalizeRoute(r)
        if (pattern.startsWith(ADMIN_PREFIX) || `${pattern}/` === ADMIN_PREFIX) {
          throw new SovraError(
            'ERR_CONFIG',
            `route ${show(pattern)} is under ${ADMIN_PREFIX}, which is reserved for sovra's admin API`,
          )
        }
        if (droppedHost !== undefined)
          warn(at(`routes[${i}]`), `host ${show(droppedHost)} is ignored; sovra routes by path (${pattern})`)
        fnRoutes.push(pattern)
        routes.push({ pattern, target: worker.name as string })
      } catch (e) {
        error(at(`routes[${i}]`), isSovraError(e) ? e.message : String(e))
      }
    })

    const tier = worker.tier ?? defaultTier
    if (!tierNames.includes(tier))
      error(at('tier'), `unknown tier ${show(tier)}; valid tiers are: ${tierNames.join(', ')}`)

    let secretNames = secrets.names()
    if (worker.secrets !== undefined) {
      secretNames = worker.secrets
      for (const s of worker.secrets) {
        if (!secrets.has(s)) {
          error(
            at('secrets'),
            `function ${show(worker.name)} requires secret ${show(s)}, which is not set; put ${s}=... in .dev.vars next to the config or set SOVRA_SECRET_${s}`,
          )
        }
      }
    }

    const limits = { ...DEFAULT_LIMITS, ...stripUndefined(worker.limits ?? {}) }
    if (worker.limits?.cpu_ms !== undefined)
      warn(
        at('limits.cpu_ms'),
        'cpu_ms is accepted for wrangler compatibility but not enforced; sovra enforces limits.timeout_ms (wall clock)',
      )
    const isolates = { ...DEFAULT_ISOLATES, ...stripUndefined(worker.isolates ?? {}) }
    if (isolates.min > isolates.max) {
      error(
        at('isolates'),
        `isolates.min (${isolates.min}) is above isolates.max (${isolates.max}); min must be <= max`,
      )
    }
    const bindings = resolveBindings(worker, { at, error, warn, pools: poolNames })
    const vars = { ...(worker.vars ?? {}) }
    for (const name of Object.keys(vars)) {
      if (secretNames.includes(name))
        warn(at(`vars.${name}`), `var ${show(name)} is shadowed by a secret of the same name`)
    }

    const crons = [...(worker.crons ?? []), ...(worker.triggers?.crons ?? [])]
    for (const cron of crons) {
      try {
        parseSchedule({
          function: worker.name,
          cron,
          timezone: worker.timezone,
          startDate: worker.start_date,
          stopDate: worker.stop_date,
        })
      } catch (e) {
        error(at('crons'), isSovraError(e) ? e.message : String(e))
      }
    }
    functions.push({
      name: worker.name,
      main,
      routes: fnRoutes,
      tier,
      vars,
      secrets: secretNames,
      limits: { timeout_ms: limits.timeout_ms, memory_mb: limits.memory_mb, max_body_bytes: limits.max_body_bytes },
      isolates,
      crons,
      timezone: worker.timezone,
      startDate: worker.start_date,
      stopDate: worker.stop_date,
      catchUpCrons: worker.missed_crons !== 'skip',
      compatibility_date: worker.compatibility_date,
      compatibility_flags: worker.compatibility_flags ?? [],
      bindings,
      risk: worker.risk ?? 'low',
      objectTriggers: worker.object_triggers ?? [],
      rollout: worker.rollout ?? {},
    })
  }

  try {
    new RouteTable(routes, (t) => `function ${show(t)}`)
  } catch (e) {
    error('routes', isSovraError(e) ? e.message : String(e))
  }

  resolved.pools.forEach((p, i) => {
    if (p.apiKeySecret !== undefined && !secrets.has(p.apiKeySecret)) {
      error(
        `pools[${i}].api_key_secret`,
        `pool ${show(p.name)} needs secret ${show(p.apiKeySecret)}, which is not set; put it in .dev.vars or set SOVRA_SECRET_${p.apiKeySecret}`,
      )
    }
  })

  const auth = resolveAuth(top, { dir, file, tiers })
  diagnostics.push(...auth.diagnostics)

  const name = top.name ?? functions[0]?.name ?? 'sovra'
  return {
    project: {
      file,
      dir,
      name,
      env: options.env,
      tiers,
      functions,
      pools: resolved.pools,
      secrets,
      config: top,
      auth: auth.auth,
    },
    diagnostics,
  }
}

function stripUndefined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, val]) => val !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>
  }
}

/**
 * Every binding of one worker: each kind reads its wrangler table and its native `bindings` entries; an `env` name
 * bound twice is an error naming both.
 * @param worker the merged worker table
 * @param ctx where diagnostics go
 */
function resolveBindings(worker: Worker, ctx: ResolveContext): Binding[] {
  const native = worker.bindings ?? []
  const out: Binding[] = []
  for (const kind of Object.values(BINDINGS)) {
    const mine = native.filter((b) => b.type === kind.type) as never[]
    out.push(...(kind.resolve(worker, mine, ctx) as Binding[]))
  }
  const seen = new Map<string, string>()
  for (const b of out) {
    const before = seen.get(b.name)
    if (before !== undefined)
      ctx.error(
        ctx.at('bindings'),
        `env name ${show(b.name)} is bound twice (${before} and ${b.type}); give each binding its own name`,
      )
    seen.set(b.name, b.type)
  }
  return out
}
