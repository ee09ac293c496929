import { SILENT_LOGGER, type Logger, type Metrics } from '../../core/observe.ts'
import type { FunctionLogLine, InvocationRecord, IsolateEvent } from '../../isolate/pool.ts'

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

/**
 * Returns a function that writes one console line of a function as a structured log line: `function`, `version`,
 * `invocation_id` (absent for a line written at module load), `trace_id` (the request's `traceparent` trace id, else
 * its `x-request-id`, else the invocation id), `source: "console"`, the console method and the text as `msg`; level
 * `error` for console.error, `warn` for console.warn, else `info`. `sovra logs` reads these lines
 * (infra/observe/log-store.ts).
 * @param log where to write
 * @example
 * observer: { onLog: consoleLogger(log) }
 */
export function consoleLogger(log: HostLogger): (line: FunctionLogLine) => void {
  const children = new Map<string, HostLogger>()
  return (line) => {
    const key = `${line.function}@${line.version}`
    let child = children.get(key)
    if (child === undefined) {
      child =
        log.child?.({ function: line.function, version: line.version }) ??
        bound(log, { function: line.function, version: line.version })
      children.set(key, child)
    }
    const fields: Record<string, unknown> = {}
    if (line.invocationId !== undefined) fields['invocation_id'] = line.invocationId
    const trace = line.traceId ?? line.invocationId
    if (trace !== undefined) fields['trace_id'] = trace
    fields['source'] = 'console'
    fields['console'] = line.method
    if (line.method === 'error') child.error(fields, line.message)
    else if (line.method === 'warn') child.warn(fields, line.message)
    else child.info(fields, line.message)
  }
}
