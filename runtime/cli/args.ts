import { parseArgs, type ParseArgsConfig } from 'node:util'
import { SovraError } from '../core/errors.ts'

/** Options every command takes. */
export const COMMON_OPTIONS = {
  config: { type: 'string', short: 'c' },
  env: { type: 'string', short: 'e' },
  help: { type: 'boolean', short: 'h' },
  /** The state folder (buckets, embedded database); default .sovra/state next to the config. */
  state: { type: 'string' },
} as const satisfies ParseArgsConfig['options']

/**
 * Parses a command's arguments strictly: an unknown flag, a missing value or a stray positional is a usage error
 * (ERR_USAGE, exit 2) that names the flag and shows the command's usage.
 * @param args the arguments after the command name
 * @param options the flags the command takes
 * @param usage the usage line
 * @param positionals how many positionals are allowed
 */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  options: T,
  usage: string,
  positionals = 0,
): {
  values: ReturnType<typeof parseArgs<{ options: T; allowPositionals: true; strict: true }>>['values']
  positionals: string[]
} {
  let parsed
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true })
  } catch (error) {
    const msg = (error as Error).message
    throw new SovraError('ERR_USAGE', `${msg}\nusage: ${usage}`)
  }
  if (parsed.positionals.length > positionals) {
    throw new SovraError(
      'ERR_USAGE',
      `unexpected argument ${JSON.stringify(parsed.positionals[positionals])}\nusage: ${usage}`,
    )
  }
  return { values: parsed.values, positionals: parsed.positionals }
}

/**
 * Parses a TCP port flag.
 * @param value the flag's value
 * @param flag its name, for the message
 */
export function parsePort(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new SovraError('ERR_USAGE', `${flag}: expected a port number 0-65535, received ${JSON.stringify(value)}`)
  return n
}

/**
 * Parses a non-negative integer flag (milliseconds, counts).
 * @param value the flag's value
 * @param flag its name, for the message
 * @param fallback when the flag is absent
 */
export function parseCount(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0)
    throw new SovraError('ERR_USAGE', `${flag}: expected a whole number >= 0, received ${JSON.stringify(value)}`)
  return n
}
