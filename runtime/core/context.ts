/** What triggered an invocation. */
export type TriggerKind = 'http' | 'cron' | 'object' | 'invoke'

/** Identity of one invocation, the same in logs, metrics, error bodies and the `x-sovra-invocation-id` header. */
export interface Invocation {
  /** Unique id (UUID v4). */
  readonly id: string
  /** The function's name in config. */
  readonly function: string
  /** The deployed version (the bundle's short sha256 until versions exist). */
  readonly version: string
  /** What triggered it. */
  readonly trigger: TriggerKind
}

/**
 * The caller of an HTTP invocation, as the host established it ([auth]: a verified JWT, or a dev principal on
 * loopback). Every HTTP invocation has one: a caller who proved nothing is `{ subject: 'anonymous', groups: [],
 * clearance: <lowest tier>, anonymous: true }`. Cron and object invocations have none.
 */
export interface Principal {
  readonly subject: string
  readonly groups: readonly string[]
  /** The highest tier of data this caller may see. */
  readonly clearance: string
  /** The caller's tenant (the token's tenant claim, or the dev principal's), when it has one. */
  readonly tenant?: string
  /** True only for the anonymous principal (no credentials); absent for verified callers. */
  readonly anonymous?: boolean
}

/**
 * The third handler argument, as in Cloudflare Workers, plus sovra's deadline, invocation and principal.
 */
export interface ExecutionContext {
  /** Keeps the invocation alive until the promise settles (bounded by the deadline). Rejections are logged. */
  waitUntil(promise: Promise<unknown>): void
  /** Aborts when the deadline passes or the caller goes away. */
  readonly signal: AbortSignal
  /** Epoch milliseconds after which the invocation is stopped. */
  readonly deadline: number
  readonly invocation: Invocation
  /** The caller: always set for HTTP (anonymous when it proved nothing), undefined for crons and object events. */
  readonly principal: Principal | undefined
}
