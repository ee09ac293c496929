import type { ExecutionContext, Invocation, Principal } from '../core/index.ts'
import { WaitUntil } from '../core/dispatch.ts'

/** An ExecutionContext for calling a handler directly in a test, with a way to await its waitUntil work. */
export interface TestExecutionContext extends ExecutionContext {
  /** Resolves when every waitUntil promise has settled; rejects with the first rejection. */
  waitForAll(): Promise<void>
}

/** Options for {@link createExecutionContext}. */
export interface TestExecutionContextOptions {
  /** How long the invocation may run: sets `ctx.deadline` (default 30 s from now). */
  timeoutMs?: number
  /** Invocation fields to set (id, function, version, trigger); the rest are test defaults. */
  invocation?: Partial<Invocation>
  /** The caller, as an HTTP invocation would have it (default none, as for crons and object events). */
  principal?: Principal
}

// The waitUntil set of each context this module made: waitOnExecutionContext accepts only those (as
// cloudflare:test does), and a handler cannot reach the set through the context it was given.
const WAITS = new WeakMap<ExecutionContext, WaitUntil>()

/**
 * Creates an ExecutionContext for unit tests (`cloudflare:test`'s `createExecutionContext`, plus sovra's deadline,
 * invocation and principal).
 * @param options deadline (default 30 s from now), invocation fields, principal
 * @example
 * const ctx = createExecutionContext()
 * const res = await worker.fetch(new Request('http://local/hello'), { GREETING: 'hi' }, ctx)
 * await waitOnExecutionContext(ctx)
 */
export function createExecutionContext(options: TestExecutionContextOptions = {}): TestExecutionContext {
  const waits = new WaitUntil()
  const controller = new AbortController()
  const deadline = Date.now() + (options.timeoutMs ?? 30_000)
  const ctx: TestExecutionContext = {
    waitUntil: (p) => waits.add(p),
    signal: controller.signal,
    deadline,
    invocation: { id: crypto.randomUUID(), function: 'test', version: 'test', trigger: 'http', ...options.invocation },
    principal: options.principal,
    async waitForAll() {
      // The hosts' own settling (runtime/core/dispatch.ts); a test sees the first rejection as a failure.
      const errors = await waits.settle()
      if (errors.length > 0) throw errors[0]
    },
  }
  WAITS.set(ctx, waits)
  return ctx
}

/**
 * Waits until every `ctx.waitUntil()` promise has settled, including ones registered meanwhile. As in
 * `cloudflare:test`: one rejection is rethrown as is, several as an AggregateError.
 * @param ctx a context made by {@link createExecutionContext}
 * @example
 * const ctx = createExecutionContext()
 * await worker.scheduled(createScheduledController({ cron: '0 2 * * *' }), env, ctx)
 * await waitOnExecutionContext(ctx)
 */
export async function waitOnExecutionContext(ctx: ExecutionContext): Promise<void> {
  const waits = WAITS.get(ctx)
  if (waits === undefined) {
    throw new TypeError(
      'waitOnExecutionContext: expected an ExecutionContext made by createExecutionContext() from sovra/testing, received one made elsewhere',
    )
  }
  const errors = await waits.settle()
  if (errors.length === 1) throw errors[0]
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} waitUntil promises rejected`)
}
