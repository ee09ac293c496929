import { pino, type DestinationStream, type Logger } from 'pino'

let lastMs = 0
let lastTime = ''

/**
 * pino's ISO timestamp, formatted once per millisecond: a busy host writes several lines per millisecond and
 * `toISOString` showed in its CPU profile.
 */
export function isoTimeCached(): string {
  const now = Date.now()
  if (now !== lastMs) {
    lastMs = now
    lastTime = `,"time":"${new Date(now).toISOString()}"`
  }
  return lastTime
}

/**
 * Bytes of log lines gathered before stdout is written, and the longest a line waits while the host is quiet. A
 * busy host writes one line per invocation: one `write` per line was 4% of the host thread's time in its CPU
 * profile (trivial requests at ~9k req/s); gathered, one write carries ~15 lines. pino flushes the rest
 * synchronously on exit (its destinations register an exit hook, on-exit-leak-free), so lines are lost only when
 * the process is killed outright, as they could already be while an asynchronous write was in flight.
 * Ref: sonic-boom `minLength` / `periodicFlush`; pino docs, "Asynchronous logging".
 */
export const LOG_BUFFER_BYTES = 4096
export const LOG_FLUSH_MS = 100

/** Sees every serialised line a logger writes, after its destination did (see {@link createLogger}'s `tap`). */
export interface LogTap {
  write(line: string): void
}

/**
 * Creates the structured JSON logger (pino): one line per event, ISO time, `service: "sovra"`.
 * @param options level; a destination (default: stdout, asynchronous, buffered up to {@link LOG_BUFFER_BYTES} or
 * {@link LOG_FLUSH_MS}); a tap that sees every line too (the host's function log store, infra/observe/log-store.ts)
 * @example
 * const log = createLogger({ level: 'info' })
 * log.info({ function: 'echo' }, 'function ready')
 */
export function createLogger(options: { level?: string; destination?: DestinationStream; tap?: LogTap } = {}): Logger {
  const out =
    options.destination ??
    pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS })
  const destination = options.tap === undefined ? out : tee(out, options.tap)
  return pino(
    {
      level: options.level ?? process.env['SOVRA_LOG_LEVEL'] ?? 'info',
      base: { service: 'sovra' },
      timestamp: isoTimeCached,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  )
}

/**
 * A destination that writes to `out`, then hands the line to `tap`; flushing flushes `out` (pino's `log.flush`).
 * One object with a `write` rather than pino.multistream: that one checks levels per stream on every line.
 */
function tee(out: DestinationStream, tap: LogTap): DestinationStream {
  const flushable = out as DestinationStream & { flush?(cb: (error?: Error) => void): void }
  return {
    write(line: string) {
      out.write(line)
      tap.write(line)
    },
    flush(cb: (error?: Error) => void) {
      if (typeof flushable.flush === 'function') flushable.flush(cb)
      else cb()
    },
  } as DestinationStream
}

export type { Logger }
