import { pino, type DestinationStream, type Logger } from 'pino'

/**
 * Creates the structured JSON logger (pino): one line per event, ISO time, `service: "sovra"`.
 * @param options level, and a destination (default: stdout, asynchronous)
 * @example
 * const log = createLogger({ level: 'info' })
 * log.info({ function: 'echo' }, 'function ready')
 */
export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: false })
  return pino(
    {
      level: options.level ?? process.env['SOVRA_LOG_LEVEL'] ?? 'info',
      base: { service: 'sovra' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  )
}

export type { Logger }
