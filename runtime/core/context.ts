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

/** A verified caller. Present only when the host authenticated the request. */
export interface Principal {
  readonly subject: string
  readonly groups: readonly string[]
  /** The highest tier of data this caller may see. */
  readonly clearance: string
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
  readonly principal: Principal | undefined
}
