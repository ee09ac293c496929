/**
 * Handler dispatch: the one copy every host uses (isolates, the OpenWhisk entry, `sovra/testing`). Looking up a
 * handler, checking what it returned, running `scheduled`/`object` with their `noRetry` flag, and settling
 * `waitUntil` promises all behave the same wherever a function runs.
 */
import { SovraError } from './errors.ts'
import type { FunctionModule, ObjectEvent, ScheduledController } from './handlers.ts'
import type { ExecutionContext } from './context.ts'
import { HANDLER_NAMES } from './handlers.ts'

/** A handler a module may export. */
export type HandlerName = (typeof HANDLER_NAMES)[number]

/** A function module with handlers over any env. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- env is the function's own type; dispatch never reads it
export type AnyModule = FunctionModule<any>

/**
 * The handlers a module exports.
 * @param mod the module's default export
 */
export function handlerNames(mod: AnyModule): HandlerName[] {
  return HANDLER_NAMES.filter((n) => typeof mod[n] === 'function')
}

/**
 * Checks a bundle's default export: an object with at least one handler. Thrown errors say what it was instead.
 * @param candidate the module's default export
 */
export function functionModule(candidate: unknown): AnyModule {
  if (typeof candidate !== 'object' || candidate === null) {
    throw new Error(
      `the module must export default an object with fetch, scheduled or object handlers; its default export is ${candidate === null ? 'null' : typeof candidate}`,
    )
  }
  const mod = candidate as AnyModule
  if (handlerNames(mod).length === 0) throw new Error('the default export has no fetch, scheduled or object handler')
  return mod
}

function noHandler(mod: AnyModule, name: HandlerName, fn: string): SovraError {
  return new SovraError(
    'ERR_NO_HANDLER',
    `function "${fn}" has no ${name} handler; it exports: ${handlerNames(mod).join(', ') || 'nothing'}`,
  )
}

/**
 * The waitUntil promises of one invocation. `settle` waits until no new ones arrive (a waitUntil callback may call
 * waitUntil again) and returns every rejection; a rejection never fails the invocation that registered it.
 */
export class WaitUntil {
  readonly #waits: Array<Promise<unknown>> = []
  /** Rejection reasons, in the order they happened. */
  readonly errors: unknown[] = []

  /** @param promise kept alive until it settles */
  add(promise: unknown): void {
    this.#waits.push(Promise.resolve(promise).catch((e: unknown) => void this.errors.push(e)))
  }

  /** True when nothing was registered (the common case: no waiting at all). */
  get empty(): boolean {
    return this.#waits.length === 0
  }

  /** Resolves with the rejections once every promise, including those added meanwhile, has settled. */
  async settle(): Promise<unknown[]> {
    for (let seen = 0; seen < this.#waits.length;) {
      const batch = this.#waits.slice(seen)
      seen = this.#waits.length
      await Promise.all(batch)
    }
    return this.errors
  }
}

/**
 * Runs the `fetch` handler and checks it returned a Response.
 * @param mod the module
 * @param fn the function's name, for messages
 * @param request the request
 * @param env the function's env
 * @param ctx its execution context
 */
export async function dispatchFetch(
  mod: AnyModule,
  fn: string,
  request: Request,
  env: unknown,
  ctx: ExecutionContext,
): Promise<Response> {
  const handler = mod.fetch
  if (typeof handler !== 'function') throw noHandler(mod, 'fetch', fn)
  const response: unknown = await handler.call(mod, request, env, ctx)
  if (!(response instanceof Response)) {
    throw new SovraError(
      'ERR_HANDLER',
      `fetch handler of "${fn}" returned ${response === undefined ? 'undefined' : typeof response}; it must return a Response`,
    )
  }
  return response
}

/** What an event invocation runs: a cron firing or one object event. */
export type EventInput =
  { handler: 'scheduled'; cron: string; scheduledTime: number } | { handler: 'object'; event: ObjectEvent }

/** How an event invocation ended; `noRetry` is the scheduled handler's `controller.noRetry()`. */
export type EventOutcome = { ok: true; noRetry: boolean } | { ok: false; error: unknown; noRetry: boolean }

/**
 * Runs `scheduled` or `object` and settles its waitUntil work; never throws (the outcome says how it ended).
 * @param mod the module
 * @param fn the function's name, for messages
 * @param input which handler, with its arguments
 * @param env the function's env
 * @param ctx its execution context
 * @param waits the invocation's waitUntil set (settled before the outcome is returned)
 */
export async function dispatchEvent(
  mod: AnyModule,
  fn: string,
  input: EventInput,
  env: unknown,
  ctx: ExecutionContext,
  waits: WaitUntil,
): Promise<EventOutcome> {
  let noRetry = false
  try {
    if (input.handler === 'scheduled') {
      if (typeof mod.scheduled !== 'function') throw noHandler(mod, 'scheduled', fn)
      const controller: ScheduledController = {
        cron: input.cron,
        scheduledTime: input.scheduledTime,
        noRetry: () => {
          noRetry = true
        },
      }
      await mod.scheduled.call(mod, controller, env, ctx)
    } else {
      if (typeof mod.object !== 'function') throw noHandler(mod, 'object', fn)
      await mod.object.call(mod, input.event, env, ctx)
    }
    await waits.settle()
    return { ok: true, noRetry }
  } catch (error) {
    await waits.settle()
    return { ok: false, error, noRetry }
  }
}
