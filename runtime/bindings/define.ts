import type * as v from 'valibot'

import type { Principal } from '../core/context.ts'
import type { WorkerTables } from '../config/schema.ts'

/** Calls a binding method on the host; what the isolate side of a binding is built on. */
export type CallHost = (method: string, args: unknown[], transfer?: ArrayBuffer[]) => Promise<unknown>

/** A structured-clone-safe answer to a binding call, with the buffers to move rather than copy. */
export interface Served {
  value: unknown
  transfer: ArrayBuffer[]
}

/**
 * Who made a binding call: the principal the host verified for the invocation that made it. Only kinds that set
 * {@link BindingDefinition.perCaller} get it (the isolate then tracks which invocation each call belongs to); it is
 * absent for the others, for invocations without a principal (cron, object events) and for calls made outside any
 * invocation (at module load, or from a timer that outlived its invocation), so a kind that enforces access must
 * treat "absent" as "nobody".
 */
export interface CallContext {
  principal?: Principal | undefined
  /** The id of the invocation that made the call (for the log lines a kind writes, e.g. `ai call`). */
  invocationId?: string | undefined
}

/** Runs one method call of one binding on the host. */
export type BindingServer = (method: string, args: unknown[], call: CallContext) => Promise<Served>

/** The function a binding belongs to, as the host side sees it. */
export interface BindingCaller {
  function: string
  tier: string
  /** The function's timeout: the default deadline of its calls. */
  timeoutMs: number
}

/**
 * The host's services that bindings are served by (bucket adapters, the inference router, ...). A binding kind
 * that needs a new service adds its field here by declaration merging from its own folder, so the kind stays one
 * folder:
 * @example
 * declare module '../define.ts' { interface HostServices { index?: IndexService } }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging, one field per kind
export interface HostServices {}

/** What a binding's `resolve` reports to and reads from the project being resolved. */
export interface ResolveContext {
  /** The key path of this worker's table (`functions[0]`), for diagnostics. */
  at(key: string): string
  error(path: string, message: string): void
  warn(path: string, message: string): void
  /** Names of the project's inference pools. */
  pools: readonly string[]
}

/** Cluster-side settings a deploy binds into actions' `__sovra` parameter (per binding kind). */
export interface ActionInputs {
  /** S3 settings of the cluster's MinIO. */
  s3?: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string } | undefined
  /** The AI router the actions call (the gateway) and its bearer token. */
  ai?: { url: string; token: string } | undefined
}

/** A binding in config, resolved: its kind, its `env` name and its kind's settings. */
export interface BindingSpecBase {
  type: string
  name: string
}

/** The resolved settings of one binding of the kind a schema describes. */
export type SpecOf<TSchema extends v.GenericSchema<unknown, BindingSpecBase>> = v.InferOutput<TSchema>

/**
 * One binding kind: everything sovra knows about it, in one place.
 * - `schema`: the valibot object schema of one entry in a worker's `bindings` list (a variant member on `type`)
 * - `resolve`: the entries of this kind for one worker, from wrangler's own keys (`[[r2_buckets]]`, `[ai]`, ...)
 *   and the native `bindings` entries of this kind, checked and reported through `ctx`
 * - `client`: the isolate side, the object a function sees as `env[name]`
 * - `serve`: the host side, running one call on the host's services
 * - `actionParams`: what an OpenWhisk deploy binds for these bindings into `__sovra` (the action side is
 *   `./<type>/action.ts`, exporting `actionEnv(params, fn)`, bundled into actions only when used)
 */
export interface BindingDefinition<TSchema extends v.GenericSchema<unknown, BindingSpecBase>> {
  type: SpecOf<TSchema>['type']
  schema: TSchema
  resolve(worker: WorkerTables, native: ReadonlyArray<SpecOf<TSchema>>, ctx: ResolveContext): Array<SpecOf<TSchema>>
  client(call: CallHost, spec: SpecOf<TSchema>): unknown
  serve(spec: SpecOf<TSchema>, services: HostServices, caller: BindingCaller): BindingServer
  /**
   * The kind's `serve` reads `call.principal` (e.g. to enforce document ACLs with the caller's identity) or
   * `call.invocationId` (the `ai` kind: its log line names the invocation). Functions
   * with such a binding track their current invocation across awaits (AsyncLocalStorage, which costs every
   * invocation of that isolate some microseconds on Node 20), so it is opt-in per kind.
   */
  perCaller?: boolean
  actionParams?(specs: ReadonlyArray<SpecOf<TSchema>>, inputs: ActionInputs, fn: string): Record<string, unknown>
}

/**
 * Defines a binding kind (the shape of miniflare's plugins: a plain object with its schema and its factories).
 * @param definition the kind's type, schema, resolver, isolate client, host server and deploy parameters
 * @example
 * export const bucket = defineBinding({ type: 'bucket', schema, resolve, client: bucketClient, serve })
 */
export function defineBinding<TSchema extends v.GenericSchema<unknown, BindingSpecBase>>(
  definition: BindingDefinition<TSchema>,
): BindingDefinition<TSchema> {
  return definition
}

/** A JavaScript identifier: what an `env` property name must be. */
export const ENV_NAME = /^[A-Za-z_$][\w$]*$/
