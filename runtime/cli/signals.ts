import type { Logger } from '../core/observe.ts'

/** The signals that stop a host, and the exit status of a forced stop (128 + the signal number, as shells report). */
export const SHUTDOWN_SIGNALS = { SIGTERM: 143, SIGINT: 130 } as const

/** A termination signal the host handles. */
export type ShutdownSignal = keyof typeof SHUTDOWN_SIGNALS

/** Where signals come from: `process`, or a stand-in in tests. */
export interface SignalSource {
  on(signal: ShutdownSignal, listener: () => void): unknown
  off(signal: ShutdownSignal, listener: () => void): unknown
}

/** What {@link onShutdownSignals} returns. */
export interface ShutdownSignals {
  /** Resolves with the first signal: time to drain. */
  requested: Promise<ShutdownSignal>
  /** Removes the handlers (once the host has stopped). */
  dispose(): void
}

/**
 * Handles SIGTERM and SIGINT for a host: the first one starts the graceful shutdown; another SIGTERM while it
 * drains is logged and changes nothing (orchestrators and process managers repeat SIGTERM; dropping in-flight
 * replies on the second one defeated the grace period); SIGINT a second time (Ctrl-C twice) or any third signal
 * forces the exit at once, with status 130 (SIGINT) or 143 (SIGTERM).
 * @param log where each signal is logged, one line each
 * @param options the signal source (default `process`) and how to exit (default `process.exit`)
 * @example
 * const signals = onShutdownSignals(log)
 * await signals.requested
 * await host.close(grace)
 * signals.dispose()
 */
export function onShutdownSignals(
  log: Logger,
  options: { source?: SignalSource; exit?: (code: number) => void } = {},
): ShutdownSignals {
  const source: SignalSource = options.source ?? process
  const exit = options.exit ?? ((code: number) => process.exit(code))
  const seen: Record<ShutdownSignal, number> = { SIGTERM: 0, SIGINT: 0 }
  let resolve: (signal: ShutdownSignal) => void = () => undefined
  const requested = new Promise<ShutdownSignal>((r) => {
    resolve = r
  })
  const handle = (signal: ShutdownSignal): void => {
    seen[signal]++
    const total = seen.SIGTERM + seen.SIGINT
    if (total === 1) {
      log.info({ signal }, 'shutdown requested')
      resolve(signal)
    } else if (seen.SIGINT >= 2 || total >= 3) {
      // pino writes what it holds synchronously on exit, so this line is not lost.
      log.error({ signal, signals: total }, 'shutdown forced: exiting without waiting for in-flight requests')
      exit(SHUTDOWN_SIGNALS[signal])
    } else {
      log.warn(
        { signal, signals: total },
        'shutdown already in progress: still waiting for in-flight requests (SIGINT twice or a third signal forces the exit)',
      )
    }
  }
  const listeners = {
    SIGTERM: () => handle('SIGTERM'),
    SIGINT: () => handle('SIGINT'),
  }
  source.on('SIGTERM', listeners.SIGTERM)
  source.on('SIGINT', listeners.SIGINT)
  return {
    requested,
    dispose() {
      source.off('SIGTERM', listeners.SIGTERM)
      source.off('SIGINT', listeners.SIGINT)
    },
  }
}
