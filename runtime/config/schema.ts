import * as v from 'valibot'

import { nonNegativeInt, positiveInt } from './numbers.ts'
import { CalendarSchema, PoolSchema } from './pools.ts'
import { AuthSchema } from '../auth/schema.ts'
import { BindingSchema, type Binding } from '../bindings/registry.ts'

/** Default limits when config says nothing (issue: timeout 30 s, 256 MiB, 1 MiB bodies). */
export const DEFAULT_LIMITS = { timeout_ms: 30_000, memory_mb: 256, max_body_bytes: 1024 * 1024 } as const
/**
 * Default isolate pool per function: up to 64 invocations at once in each isolate, as Workers run many requests in
 * one isolate. Functions here mostly wait (env.AI, buckets, remote APIs): with concurrency 1 two isolates served two
 * callers and queued the rest (10 req/s for a 200 ms wait under 50 callers; 64: 250). The price is the blast
 * radius: a timeout or OOM terminates the isolate and every invocation in it; set `concurrency = 1` for untrusted
 * or CPU-heavy functions (README, "Isolates and limits"; bench/run.ts measures both).
 */
export const DEFAULT_ISOLATES = { min: 1, max: 2, concurrency: 64, queue: 256 } as const

const name = v.pipe(
  v.string(),
  v.regex(
    /^[a-z0-9][a-z0-9_-]{0,62}$/,
    'a name of lowercase letters, digits, "-" or "_" (at most 63, starting with a letter or digit)',
  ),
)

/** `[limits]`: wrangler's table, with sovra's enforced limits. */
export const LimitsSchema = v.object({
  timeout_ms: v.optional(positiveInt(15 * 60_000)),
  memory_mb: v.optional(v.pipe(v.number(), v.integer(), v.minValue(16), v.maxValue(16_384))),
  max_body_bytes: v.optional(positiveInt(100 * 1024 * 1024)),
  /** Wrangler's CPU limit: accepted for compatibility, not enforced (timeout_ms is). */
  cpu_ms: v.optional(positiveInt(15 * 60_000)),
})

/** `[isolates]`: the worker-thread pool of a function (sovra's). */
export const IsolatesSchema = v.object({
  min: v.optional(nonNegativeInt(64)),
  max: v.optional(positiveInt(64)),
  concurrency: v.optional(positiveInt(1000)),
  queue: v.optional(nonNegativeInt(100_000)),
})

/** `[storage]`: where buckets live. fs (default) under the state folder, or an S3-compatible store (MinIO). */
export const StorageSchema = v.object({
  driver: v.optional(v.picklist(['fs', 's3'])),
  /** fs: the folder holding buckets (default `.sovra/state/buckets` next to the config). */
  dir: v.optional(v.string()),
  /** s3: e.g. `http://minio.internal:9000`; the secret key comes from SOVRA_S3_SECRET_ACCESS_KEY, never the file. */
  endpoint: v.optional(v.pipe(v.string(), v.url('an http(s) URL such as "http://minio:9000"'))),
  region: v.optional(v.string()),
  access_key_id: v.optional(v.string()),
})
export type Storage = v.InferOutput<typeof StorageSchema>

/** A route: a path pattern (`/v1/items/*`), a wrangler `host/path*` pattern, or wrangler's `{ pattern }` table. */
export const RouteSchema = v.union([
  v.string(),
  v.object({
    pattern: v.string(),
    zone_name: v.optional(v.string()),
    zone_id: v.optional(v.string()),
    custom_domain: v.optional(v.boolean()),
  }),
])

const VarValueSchema = v.union([
  v.string(),
  v.number(),
  v.boolean(),
  v.array(v.unknown()),
  v.record(v.string(), v.unknown()),
])

/** `rollout`: canary thresholds; the controller rolls a canary back when it crosses them (compared with stable). */
export const RolloutSchema = v.object({
  max_error_rate: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(1))),
  max_p95_ms: v.optional(v.pipe(v.number(), v.minValue(1))),
  min_requests: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  window_s: v.optional(v.pipe(v.number(), v.integer(), v.minValue(10))),
  /** Promotion needs a passing eval run id (`sovra rollout promote <fn> --eval-run ID`). */
  require_eval: v.optional(v.boolean()),
})
/** A function's rollout settings as written (defaults are applied where they are used). */
export type Rollout = v.InferOutput<typeof RolloutSchema>

/** One `object_triggers` entry: which bucket events run the function's `object` handler. */
export const ObjectTriggerSchema = v.object({
  bucket: v.string(),
  events: v.optional(v.array(v.picklist(['created', 'removed']))),
  prefix: v.optional(v.string()),
  suffix: v.optional(v.string()),
  /** Retries after the first attempt before the event is dead-lettered (default 5). */
  max_retries: v.optional(nonNegativeInt(50)),
})
/** An object trigger as written. */
export type ObjectTrigger = v.InferOutput<typeof ObjectTriggerSchema>

/** Keys a worker (the top level, a `[[functions]]` entry or an `[env.NAME]`) may carry. */
const WORKER_TABLES = {
  name: v.optional(name),
  main: v.optional(v.pipe(v.string(), v.minLength(1))),
  compatibility_date: v.optional(v.pipe(v.string(), v.isoDate('a date like 2025-01-31'))),
  compatibility_flags: v.optional(v.array(v.string())),
  workers_dev: v.optional(v.boolean()),
  vars: v.optional(v.record(v.string(), VarValueSchema)),
  routes: v.optional(v.array(RouteSchema)),
  route: v.optional(RouteSchema),
  triggers: v.optional(v.object({ crons: v.optional(v.array(v.string())) })),
  r2_buckets: v.optional(
    v.array(
      v.object({
        binding: v.string(),
        bucket_name: v.optional(v.string()),
        preview_bucket_name: v.optional(v.string()),
        jurisdiction: v.optional(v.string()),
      }),
    ),
  ),
  vectorize: v.optional(v.array(v.object({ binding: v.string(), index_name: v.string() }))),
  ai: v.optional(v.object({ binding: v.string() })),
  services: v.optional(
    v.array(v.object({ binding: v.string(), service: v.string(), entrypoint: v.optional(v.string()) })),
  ),
  limits: v.optional(LimitsSchema),
  // sovra's additions
  tier: v.optional(v.string()),
  /** Risk class: how many approvals (0, 1, 2) a deploy or promotion needs. */
  risk: v.optional(v.picklist(['low', 'medium', 'high'])),
  /** Canary thresholds: the controller rolls a canary back when it crosses them (compared with stable). */
  rollout: v.optional(RolloutSchema),
  secrets: v.optional(v.array(v.string())),
  crons: v.optional(v.array(v.string())),
  timezone: v.optional(v.string()),
  /** Crons: no run before / after (ISO 8601), as the alarms feed's startDate/stopDate. */
  start_date: v.optional(v.string()),
  stop_date: v.optional(v.string()),
  /** Crons missed while the host was down: run the latest once at start (default), or skip them. */
  missed_crons: v.optional(v.picklist(['run-once', 'skip'])),
  object_triggers: v.optional(v.array(ObjectTriggerSchema)),
  isolates: v.optional(IsolatesSchema),
} as const

/**
 * A worker's tables without the native `bindings` list: what a binding kind reads its wrangler keys from (kept apart
 * so the binding schemas, which the list is made of, do not depend on themselves).
 */
export type WorkerTables = v.InferOutput<v.ObjectSchema<typeof WORKER_TABLES, undefined>>

/** Keys a worker may carry: its tables plus sovra's own form of bindings. */
export const WORKER_ENTRIES = {
  ...WORKER_TABLES,
  /** One list, each entry typed by `type` (wrangler's `[[r2_buckets]]`, `[ai]`, ... map onto it). */
  bindings: v.optional(v.array(BindingSchema)),
} as const

/** A worker's keys. */
export const WorkerSchema = v.object(WORKER_ENTRIES)
export type Worker = v.InferOutput<typeof WorkerSchema>

/** A `[[functions]]` entry: a worker whose name is required. */
export const FunctionEntrySchema = v.object({ ...WORKER_ENTRIES, name })

/** An `[env.NAME]` table: overrides of the top level, including its own `[[functions]]`. */
export const EnvSchema = v.object({ ...WORKER_ENTRIES, functions: v.optional(v.array(FunctionEntrySchema)) })

/** The whole `wrangler-compat.toml` (a plain `wrangler.toml` is the subset without sovra's tables). */
export const ConfigSchema = v.object({
  ...WORKER_ENTRIES,
  $schema: v.optional(v.string()),
  functions: v.optional(v.array(FunctionEntrySchema)),
  env: v.optional(v.record(v.string(), EnvSchema)),
  tiers: v.optional(v.object({ order: v.pipe(v.array(v.string()), v.minLength(1)), default: v.optional(v.string()) })),
  pools: v.optional(v.array(PoolSchema)),
  calendar: v.optional(CalendarSchema),
  storage: v.optional(StorageSchema),
  database: v.optional(
    v.object({
      /** A PostgreSQL server (`postgres://...`); without it the embedded PGlite under the state folder is used. */
      url: v.optional(v.string()),
    }),
  ),
  targets: v.optional(v.looseObject({})),
  /** Public keys accepted per artifact kind (registry, deploys, pool models); `sovra keys gen` adds to a local list. */
  trust: v.optional(
    v.array(
      v.object({
        name: v.string(),
        public_key: v.pipe(
          v.string(),
          v.regex(
            /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/,
            'a base64 ed25519 public key (32 bytes) as sovra keys gen prints it',
          ),
        ),
        kinds: v.optional(v.array(v.picklist(['bundle', 'model', 'prompt', 'eval', 'dataset', 'approve', 'audit']))),
      }),
    ),
  ),
  /** How callers become principals on every host (JWT against a JWKS, dev principals on loopback). */
  auth: v.optional(AuthSchema),
  /** Deprecated alias of `[auth]` (jwks, issuer, audience, groups_claim, clearance_claim), mapped onto it. */
  gateway: v.optional(
    v.object({
      jwks: v.pipe(v.string(), v.minLength(1)),
      issuer: v.optional(v.string()),
      audience: v.optional(v.string()),
      groups_claim: v.optional(v.string()),
      clearance_claim: v.optional(v.string()),
    }),
  ),
})
export type Config = v.InferOutput<typeof ConfigSchema>

/** Resolved limits of one function. */
export interface Limits {
  timeout_ms: number
  memory_mb: number
  max_body_bytes: number
}

/** Resolved isolate pool settings of one function. */
export interface IsolateSettings {
  min: number
  max: number
  concurrency: number
  queue: number
}

/** One function, resolved: inherited keys applied, defaults filled, paths absolute. Secret values are not here. */
export interface FunctionConfig {
  name: string
  /** Absolute path of the entry module. */
  main: string
  /** Route path patterns, normalised (`/v1/echo`, `/v1/items/*`). */
  routes: string[]
  tier: string
  vars: Record<string, unknown>
  /** Names of the secrets the function receives. */
  secrets: string[]
  limits: Limits
  isolates: IsolateSettings
  crons: string[]
  timezone: string | undefined
  startDate: string | undefined
  stopDate: string | undefined
  /** Run a cron missed during downtime once at start. */
  catchUpCrons: boolean
  compatibility_date: string | undefined
  compatibility_flags: string[]
  /** Every binding (`env[name]`), of every kind, from wrangler's tables and the native `bindings` list. */
  bindings: Binding[]
  /** Risk class (approvals needed to deploy or promote: low 0, medium 1, high 2). */
  risk: 'low' | 'medium' | 'high'
  /** Object-storage events that run the `object` handler. */
  objectTriggers: ObjectTrigger[]
  /** Canary thresholds and promotion rules. */
  rollout: Rollout
}
