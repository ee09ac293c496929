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
      timestamp: isoTimeCached,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  )
}

export type { Logger }
