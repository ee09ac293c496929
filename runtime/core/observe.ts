/**
 * The observability ports: a structured logger (pino's shape, fields first) and the Prometheus exposition. infra/observe
 * implements them (pino, prom-client); everything else takes these types, never the libraries.
 */

/** A structured logger: one JSON line per call, fields first, then the message. */
export interface Logger {
  info(fields: Record<string, unknown>, msg: string): void
  warn(fields: Record<string, unknown>, msg: string): void
  error(fields: Record<string, unknown>, msg: string): void
  /** A logger that adds `bindings` to every line (pino serialises them once). */
  child?(bindings: Record<string, unknown>): Logger
}

/** A logger that drops everything (for tools that print their own output, and tests). */
export const SILENT_LOGGER: Logger = { info() {}, warn() {}, error() {} }

/** Metrics a scraper reads: the Prometheus text exposition. */
export interface Metrics {
  render(): Promise<{ contentType: string; body: string }>
}
