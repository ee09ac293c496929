import { SILENT_LOGGER, type Logger, type Metrics } from '../../core/observe.ts'
import type { InvocationRecord, IsolateEvent } from '../../isolate/pool.ts'

/** The logging a host needs: the core's Logger port. */
export type HostLogger = Logger
export { SILENT_LOGGER }

/** The metrics a host needs (the core's Metrics port plus invocation and isolate events); infra/observe implements it. */
export interface HostMetrics extends Metrics {
  onInvocation(record: InvocationRecord): void
  onIsolate(event: IsolateEvent): void
  /** Where the object-event queue's counts by status are read at scrape time. */
  setEventCounts?(read: () => Promise<Record<string, number>>): void
}

/**
 * Returns a function that writes the structured log line of one invocation: id, function, version, trigger,
 * status, outcome, duration; the error's message and stack go to the log (never to the caller). Function and
 * version are bound in a child logger per version, so pino serialises them once, not on every line.
 * @param log where to write
 */
export function invocationLogger(log: HostLogger): (r: InvocationRecord) => void {
  const children = new Map<string, HostLogger>()
  return (r) => {
    const key = `${r.invocation.function}@${r.invocation.version}`
    let child = children.get(key)
    if (child === undefined) {
      child =
        log.child?.({ function: r.invocation.function, version: r.invocation.version }) ??
        bound(log, { function: r.invocation.function, version: r.invocation.version })
      children.set(key, child)
    }
    logInvocation(child, r)
  }
}

function bound(log: HostLogger, bindings: Record<string, unknown>): HostLogger {
  return {
    info: (f, m) => log.info({ ...bindings, ...f }, m),
    warn: (f, m) => log.warn({ ...bindings, ...f }, m),
    error: (f, m) => log.error({ ...bindings, ...f }, m),
  }
}

/**
 * Writes one invocation's log line to a logger that already carries `function` and `version`.
 * @param log a logger bound to the function and version
 * @param r the finished invocation
 */
function logInvocation(log: HostLogger, r: InvocationRecord): void {
  const fields: Record<string, unknown> = {
    invocation_id: r.invocation.id,
    trigger: r.invocation.trigger,
    status: r.status,
    outcome: r.outcome,
    duration_ms: r.durationMs,
    queued_ms: r.queuedMs,
    ...r.fields,
  }
  if (r.error !== undefined) fields['error'] = { code: r.error.code, message: r.error.message, stack: r.error.stack }
  if (r.waitUntilErrors.length > 0) fields['wait_until_errors'] = r.waitUntilErrors.map((e) => e.message)
  if (r.outcome === 'ok' && r.waitUntilErrors.length === 0) log.info(fields, 'invocation')
  else if (r.status >= 500 || r.waitUntilErrors.length > 0) log.error(fields, 'invocation failed')
  else log.warn(fields, 'invocation')
}
