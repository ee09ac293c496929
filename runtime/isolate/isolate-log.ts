import type { Logger } from '../core/observe.ts'
import type { LogMessage } from './codec.ts'
import type { IsolateEvent } from './pool-options.ts'

/**
 * Writes the log line of an isolate event that needs one, as one structured line: an isolate replaced (timeout,
 * out of memory, crash; a reload's retired isolates at info level), one that failed to load, or a fault in function
 * code outside any handler (an unhandled rejection). Each names the function, its version, the invocation it
 * concerns as far as the host can tell (`attributed_to` says how), and the error's name, message and stack; nothing
 * is written as text to stderr.
 * @param log where to write
 * @param e the event
 * @example
 * observer: { onIsolate: (e) => logIsolateEvent(log, e) }
 */
export function logIsolateEvent(log: Logger, e: IsolateEvent): void {
  if (e.event === 'spawn' || e.event === 'ready' || (e.event === 'exit' && e.reason === 'unavailable')) return
  const fields: Record<string, unknown> = { function: e.function }
  if (e.version !== undefined) fields['version'] = e.version
  if (e.reason !== undefined) fields['reason'] = e.reason
  if (e.invocationId !== undefined) fields['invocation_id'] = e.invocationId
  if (e.invocationIds !== undefined) fields['invocation_ids'] = e.invocationIds
  if (e.attributedTo !== undefined) fields['attributed_to'] = e.attributedTo
  if (e.error !== undefined) {
    const { name, message, stack, code } = e.error
    fields['error'] = code === undefined ? { name, message, stack } : { name, message, code, stack }
  }
  if (e.event === 'init-error') log.error(fields, 'isolate failed to load')
  else if (e.event === 'fault') log.error(fields, 'unhandled rejection in function')
  else if (e.reason === 'crash') log.error(fields, 'isolate replaced')
  else if (e.reason === 'reload') log.info(fields, 'isolate replaced')
  else log.warn(fields, 'isolate replaced')
}

/**
 * Writes a function's console line as text, as Node writes a worker thread's console (`warn` and `error` to stderr,
 * the rest to stdout): what a pool without an `onLog` observer does (sovra invoke, a silent test host).
 * @param msg the line
 */
export function writeConsoleText(msg: LogMessage): void {
  const out = msg.method === 'warn' || msg.method === 'error' ? process.stderr : process.stdout
  out.write(`${msg.message}\n`)
}
