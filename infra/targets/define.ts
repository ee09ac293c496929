import type { Project } from '../../runtime/config/resolve.ts'
import type { FunctionConfig } from '../../runtime/config/schema.ts'

/** What a target command runs with: the project, where its state is, the environment and where to report. */
export interface TargetContext {
  project: Project
  /** The state folder override (`--state`). */
  state: string | undefined
  /** Environment variables (cluster credentials, S3 settings). */
  env: Record<string, string | undefined>
  /** Who is acting (audit entries, approvals). */
  actor: string
  /** Target-specific flags (`--apihost`, `--namespace`). */
  flags: Record<string, string | undefined>
  /** One line of progress or result for the operator. */
  say(line: string): void
}

/** A deploy: which functions, as stable or as a canary, and the target's own flags. */
export interface DeployRequest {
  functions: FunctionConfig[]
  /** Deploy as the canary at this weight (0-100) instead of making it stable. */
  canary: number | undefined
  /** Signing key name (default `default`). */
  key: string | undefined
  /** Prune what the target has but the config no longer names. */
  prune: boolean
  /** Where build output goes. */
  out: string | undefined
  /**
   * Only print the plan (`--plan`): build without signing (a dry run needs no signing key) and apply nothing. A
   * deploy that applies always signs and verifies before it calls the target.
   */
  planOnly: boolean
}

/** A rollout operation on one function. */
export type RolloutRequest =
  | { op: 'status'; fn: string }
  | { op: 'promote'; fn: string; evalRun: string | undefined }
  | { op: 'rollback'; fn: string; reason: string | undefined }
  | { op: 'pin'; fn: string; attribute: string; value: string; version: string }
  | { op: 'unpin'; fn: string; attribute: string; value: string }

/**
 * A deploy target: how sovra ships functions somewhere and changes what serves there.
 * - `build`: bundles the functions for the target, signs them into the registry and verifies them (nothing reaches
 *   the target unsigned)
 * - `plan`: compares what was built with what the target runs; returns the plan and its lines for the operator
 * - `apply`: carries the plan out (subject to approvals by risk class) and records it in the audit log
 * - `rollout`: status, promote, rollback, pin and unpin on the target's routing
 */
export interface Target<TBuilt = unknown, TPlan = unknown> {
  name: string
  build(ctx: TargetContext, req: DeployRequest): Promise<TBuilt>
  plan(ctx: TargetContext, req: DeployRequest, built: TBuilt): Promise<{ plan: TPlan; lines: string[] }>
  apply(ctx: TargetContext, req: DeployRequest, plan: TPlan): Promise<void>
  rollout(ctx: TargetContext, req: RolloutRequest): Promise<void>
}

/**
 * Defines a deploy target (the shape of nitro's presets: a plain object the CLI looks up by name).
 * @param target its name and its build, plan, apply and rollout steps
 * @example
 * export const local = defineTarget({ name: 'local', build, plan, apply, rollout })
 */
export function defineTarget<TBuilt, TPlan>(target: Target<TBuilt, TPlan>): Target<TBuilt, TPlan> {
  return target
}

/**
 * Runs a deploy on a target: build, plan (printed), then apply unless only the plan was asked for.
 * @param target the target
 * @param ctx project, state, environment, output
 * @param req what to deploy
 */
export async function runDeploy<TBuilt, TPlan>(
  target: Target<TBuilt, TPlan>,
  ctx: TargetContext,
  req: DeployRequest,
): Promise<void> {
  const built = await target.build(ctx, req)
  const { plan, lines } = await target.plan(ctx, req, built)
  for (const line of lines) ctx.say(line)
  if (!req.planOnly) await target.apply(ctx, req, plan)
}
