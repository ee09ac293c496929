import { isAbsolute, resolve } from 'node:path'
import * as v from 'valibot'

import { nonNegativeInt, positiveInt } from './numbers.ts'

import type { TierOrder } from '../core/tiers.ts'
import { show, type Diagnostic } from './diagnostics.ts'

const HHMM = /^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$/

/** One warm-surge rule of a pool: keep `min_replicas` during the last (or first) N business days of each month. */
export const SurgeSchema = v.object({
  calendar: v.picklist(['month-end', 'month-start']),
  business_days: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(23)),
  start: v.pipe(v.string(), v.regex(HHMM, 'a local time like "08:00"')),
  end: v.pipe(v.string(), v.regex(HHMM, 'a local time like "20:00" (or "24:00")')),
  timezone: v.optional(v.string()),
  min_replicas: nonNegativeInt(256),
  warmup_minutes: v.optional(nonNegativeInt(24 * 60)),
})

/** A `[[pools]]` table: one model under one (tier, class). */
export const PoolSchema = v.object({
  name: v.pipe(
    v.string(),
    v.regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a pool name of lowercase letters, digits, "-" or "_"'),
  ),
  /** What functions ask for (`env.AI.chat({ model: alias })`); several pools may share one, by tier and class. */
  alias: v.optional(v.string()),
  engine: v.picklist(['llama', 'onnx', 'external']),
  /** A model file (GGUF or ONNX), a folder with model.onnx, `registry:NAME@sha256:<hex>` / `registry:NAME:alias`, or `tiny:llama`, `tiny:embed`, `tiny:classify`. */
  model: v.optional(v.string()),
  tier: v.optional(v.string()),
  /** The highest tier the pool may serve; defaults to `tier` (external: `internal`). */
  clearance: v.optional(v.string()),
  class: v.optional(v.picklist(['interactive', 'batch'])),
  threads: v.optional(positiveInt(256)),
  slots: v.optional(positiveInt(256)),
  gpu: v.optional(v.union([v.picklist(['auto', 'cuda', 'vulkan', 'metal']), v.literal(false)])),
  gpu_layers: v.optional(nonNegativeInt(100_000)),
  context_size: v.optional(positiveInt(1 << 20)),
  max_tokens: v.optional(positiveInt(1 << 20)),
  min_replicas: v.optional(nonNegativeInt(256)),
  max_replicas: v.optional(positiveInt(256)),
  target_inflight: v.optional(positiveInt(10_000)),
  p95_budget_ms: v.optional(positiveInt(3_600_000)),
  queue_max: v.optional(nonNegativeInt(1_000_000)),
  /** Slots batch work may hold at once (default: all but one when slots > 1: the interactive reserve). */
  batch_slots: v.optional(positiveInt(256)),
  scale_up_delay_s: v.optional(nonNegativeInt(3600)),
  scale_down_delay_s: v.optional(nonNegativeInt(86_400)),
  surge: v.optional(v.array(SurgeSchema)),
  /** Replicas already running elsewhere (`sovra pool serve` on GPU nodes): no local child processes. */
  endpoints: v.optional(v.array(v.pipe(v.string(), v.url('an http(s) URL such as "http://gpu1:8400"')))),
  /** external: the OpenAI-compatible base URL (e.g. `https://api.example/v1`). */
  url: v.optional(v.pipe(v.string(), v.url('an http(s) URL such as "https://llm.example/v1"'))),
  api_key_secret: v.optional(v.string()),
  /** external: the provider's model name, sent as `model`. */
  remote_model: v.optional(v.string()),
  /** Probe untrusted model files in a child process first (a malformed GGUF can abort a process). Default true. */
  probe: v.optional(v.boolean()),
})
export type PoolEntry = v.InferOutput<typeof PoolSchema>

/** `[calendar]`: the business calendar surge rules count days on. */
export const CalendarSchema = v.object({
  weekend: v.optional(v.array(v.string())),
  holidays: v.optional(v.array(v.pipe(v.string(), v.isoDate('a date like 2026-12-31')))),
})

/** A surge rule, resolved (timezone and warmup filled). */
export type SurgeRuleConfig = {
  [K in keyof v.InferOutput<typeof SurgeSchema>]-?: Exclude<v.InferOutput<typeof SurgeSchema>[K], undefined>
}

/** A pool, resolved: defaults filled, model path absolute. */
export interface PoolConfig {
  name: string
  alias: string
  engine: 'llama' | 'onnx' | 'external'
  /** Absolute path, a `tiny:` reference, or '' for external pools. */
  model: string
  tier: string
  clearance: string
  class: 'interactive' | 'batch'
  threads: number
  slots: number
  gpu: 'auto' | 'cuda' | 'vulkan' | 'metal' | false
  gpuLayers: number | undefined
  contextSize: number | undefined
  maxTokens: number
  minReplicas: number
  maxReplicas: number
  targetInflight: number
  p95BudgetMs: number
  queueMax: number
  batchSlots: number
  scaleUpDelayS: number
  scaleDownDelayS: number
  surge: SurgeRuleConfig[]
  endpoints: string[]
  url: string | undefined
  apiKeySecret: string | undefined
  remoteModel: string | undefined
  probe: boolean
}

/** Built-in demo models, generated on first use under the state folder (never downloaded). */
export const TINY_MODELS = ['tiny:llama', 'tiny:embed', 'tiny:classify'] as const

/**
 * Resolves `[[pools]]`: fills defaults, checks tiers, names, models and replica bounds, and reports every problem.
 * @param entries the validated tables
 * @param options config folder, tier order, the config file (for diagnostics)
 */
export function resolvePools(
  entries: readonly PoolEntry[],
  options: { dir: string; file: string; tiers: TierOrder; defaultTier: string },
): { pools: PoolConfig[]; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = []
  const error = (path: string, message: string): void =>
    void diagnostics.push({ severity: 'error', file: options.file, path, message })
  const names = options.tiers.names
  const seen = new Set<string>()
  const pools: PoolConfig[] = []
  entries.forEach((e, i) => {
    const at = (k: string): string => `pools[${i}].${k}`
    if (seen.has(e.name)) error(at('name'), `duplicate pool name ${show(e.name)}; each pool needs its own name`)
    seen.add(e.name)
    const tier = e.tier ?? options.defaultTier
    const clearance =
      e.clearance ?? (e.engine === 'external' ? (names.includes('internal') ? 'internal' : (names[0] ?? tier)) : tier)
    for (const [k, t] of [
      ['tier', tier],
      ['clearance', clearance],
    ] as const) {
      if (!names.includes(t)) error(at(k), `unknown tier ${show(t)}; valid tiers are: ${names.join(', ')}`)
    }
    let model = ''
    if (e.engine === 'external') {
      if (e.url === undefined)
        error(
          at('url'),
          `pool ${show(e.name)} has engine "external" and needs url (an OpenAI-compatible base URL), received nothing`,
        )
    } else if (e.model === undefined) {
      error(
        at('model'),
        `pool ${show(e.name)} needs model: a ${e.engine === 'llama' ? 'GGUF' : 'ONNX'} file path or ${e.engine === 'llama' ? '"tiny:llama"' : '"tiny:embed" / "tiny:classify"'}, received nothing`,
      )
    } else if (e.model.startsWith('registry:')) {
      // Verified (signature, trust, digest) by the replica before it loads anything.
      model = e.model
    } else if (e.model.startsWith('tiny:')) {
      const ok =
        e.engine === 'llama' ? e.model === 'tiny:llama' : e.model === 'tiny:embed' || e.model === 'tiny:classify'
      if (!ok)
        error(
          at('model'),
          `unknown tiny model ${show(e.model)} for engine ${e.engine}; valid: ${e.engine === 'llama' ? 'tiny:llama' : 'tiny:embed, tiny:classify'}`,
        )
      model = e.model
    } else {
      model = isAbsolute(e.model) ? e.model : resolve(options.dir, e.model)
    }
    const slots = e.slots ?? (e.engine === 'llama' ? 2 : e.engine === 'external' ? 8 : 1)
    const minReplicas = e.min_replicas ?? 1
    const maxReplicas = e.max_replicas ?? Math.max(1, minReplicas)
    if (minReplicas > maxReplicas)
      error(
        at('min_replicas'),
        `min_replicas (${minReplicas}) is above max_replicas (${maxReplicas}); min must be <= max`,
      )
    const cls = e.class ?? 'interactive'
    const surge = (e.surge ?? []).map((s, j) => {
      const timezone = s.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone
      try {
        new Intl.DateTimeFormat('en', { timeZone: timezone })
      } catch {
        error(
          at(`surge[${j}].timezone`),
          `unknown timezone ${show(timezone)}; expected an IANA name such as "Asia/Tokyo"`,
        )
      }
      if (s.end !== '24:00' && s.end <= s.start)
        error(at(`surge[${j}].end`), `end ${show(s.end)} is not after start ${show(s.start)}`)
      if (s.min_replicas > maxReplicas)
        error(
          at(`surge[${j}].min_replicas`),
          `surge min_replicas (${s.min_replicas}) is above max_replicas (${maxReplicas})`,
        )
      return { ...s, timezone, warmup_minutes: s.warmup_minutes ?? 30 }
    })
    pools.push({
      name: e.name,
      alias: e.alias ?? e.name,
      engine: e.engine,
      model,
      tier,
      clearance,
      class: cls,
      threads: e.threads ?? 1,
      slots,
      gpu: e.gpu ?? false,
      gpuLayers: e.gpu_layers,
      contextSize: e.context_size,
      maxTokens: e.max_tokens ?? 256,
      minReplicas,
      maxReplicas,
      targetInflight: e.target_inflight ?? slots,
      p95BudgetMs: e.p95_budget_ms ?? (cls === 'interactive' ? 2500 : 30_000),
      queueMax: e.queue_max ?? 64,
      batchSlots: Math.min(slots, e.batch_slots ?? (slots > 1 ? slots - 1 : 1)),
      scaleUpDelayS: e.scale_up_delay_s ?? 5,
      scaleDownDelayS: e.scale_down_delay_s ?? 120,
      surge,
      endpoints: e.endpoints ?? [],
      url: e.url,
      apiKeySecret: e.api_key_secret,
      remoteModel: e.remote_model,
      probe: e.probe ?? true,
    })
  })
  return { pools, diagnostics }
}
