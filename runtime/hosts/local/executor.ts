import { SovraError } from '../../core/errors.ts'
import { headerOf, callerAttributes, readHead, type Executor } from '../app/executor.ts'
import type { FunctionSet } from './functions.ts'

const NO_ATTRIBUTES: Readonly<Record<string, string | undefined>> = Object.freeze({})

/**
 * The embedded host's executor: the function's isolate pool, or under the control plane the version picked by
 * request id (`x-request-id`, else the invocation id) and pins on the caller's attributes; a client that goes away
 * cancels the invocation (its ctx.signal aborts, its stream stops). Every response a pool answers, errors included,
 * carries `x-sovra-version` (added where the pool makes it): the version id under the control plane, else the
 * working tree's bundle version (the first 12 hex of its sha256, as `ctx.invocation.version` and the log say).
 * @param functions the loaded functions
 */
export function isolateExecutor(functions: FunctionSet): Executor {
  return {
    async fetch(call) {
      const fn = functions.get(call.fn.name)
      if (fn === undefined)
        throw new SovraError('ERR_NOT_FOUND', `function "${call.fn.name}" is not loaded on this host`)
      const head = await readHead(call)
      const versions = fn.versions
      // Caller attributes are only gathered when a pin could match them (not on every request).
      const pool =
        versions === undefined
          ? fn.pool
          : (versions.pick(
              headerOf(head, 'x-request-id') ?? call.invocationId,
              versions.state?.pins.length ? callerAttributes(head, call.caller) : NO_ATTRIBUTES,
            ) ?? fn.pool)
      const outgoing = call.env?.outgoing
      outgoing?.once('close', () => {
        if (!outgoing.writableFinished) pool.cancel(call.invocationId, 'the client went away')
      })
      return pool.fetch(head, {
        invocationId: call.invocationId,
        trigger: 'http',
        principal: call.caller.principal,
        fields: { method: head.method, path: call.path },
      })
    },
    health() {
      return {
        ready: functions.ready,
        functions: Object.fromEntries(functions.all().map((f) => [f.config.name, f.pool.ready ? 'ready' : 'starting'])),
      }
    },
    describe() {
      return functions.all().map(({ config, pool, versions }) => ({
        name: config.name,
        routes: config.routes,
        tier: config.tier,
        limits: config.limits,
        isolates: config.isolates,
        crons: config.crons,
        vars: Object.keys(config.vars),
        secrets: config.secrets,
        bundle: { sha256: pool.bundle.sha256, version: pool.bundle.version, bytes: pool.bundle.bytes },
        stats: pool.stats(),
        // Under the control plane HTTP requests go to these versions, not to the working tree's bundle above.
        versions: versions?.describe() ?? null,
      }))
    },
  }
}
