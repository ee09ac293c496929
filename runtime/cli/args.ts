import { readFileSync, writeFileSync, type WriteFileOptions } from 'node:fs'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { resolve } from 'node:path'
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
    parsed = parseArgs({ args: joinNegativeValues(args, options), options, allowPositionals: true, strict: true })
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

// node:util parseArgs refuses `--port -1` as "argument is ambiguous" (a value starting with "-" could be a forgotten
// flag). A negative number cannot be a flag, so it is passed as `--port=-1` and its validator names the valid range.
function joinNegativeValues(args: string[], options: NonNullable<ParseArgsConfig['options']>): string[] {
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string
    const next = args[i + 1]
    if (arg === '--') return [...out, ...args.slice(i)]
    const long = arg.startsWith('--')
      ? arg.slice(2)
      : /^-[^-]$/.test(arg)
        ? Object.keys(options).find((k) => options[k]?.short === arg.slice(1))
        : undefined
    if (long !== undefined && options[long]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`--${long}=${next}`)
      i++
    } else out.push(arg)
  }
  return out
}

function usageError(flag: string, expected: string, received: string): SovraError {
  return new SovraError('ERR_USAGE', `${flag}: expected ${expected}, received ${JSON.stringify(received)}`)
}

/**
 * Parses a whole-number flag within a range: counts, limits, milliseconds.
 * @param value the flag's value (undefined when absent)
 * @param flag its name, for the message
 * @param range the smallest and largest valid value
 * @param fallback when the flag is absent
 * @example
 * const limit = parseIntFlag(values.limit, '--limit', { min: 1, max: 100_000 }, 100)
 */
export function parseIntFlag(
  value: string | undefined,
  flag: string,
  range: { min: number; max?: number },
  fallback: number,
): number {
  if (value === undefined) return fallback
  const max = range.max ?? Number.MAX_SAFE_INTEGER
  const n = /^-?\d+$/.test(value.trim()) ? Number(value) : Number.NaN
  if (!Number.isSafeInteger(n) || n < range.min || n > max)
    throw usageError(
      flag,
      range.max === undefined ? `a whole number >= ${range.min}` : `a whole number ${range.min}-${max}`,
      value,
    )
  return n
}

/**
 * Parses a TCP port flag (0 picks a free port).
 * @param value the flag's value
 * @param flag its name, for the message
 * @param fallback when the flag is absent
 */
export function parsePort(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback
  const n = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw usageError(flag, 'a port number 0-65535', value)
  return n
}

/**
 * Parses a non-negative integer flag (milliseconds, counts).
 * @param value the flag's value
 * @param flag its name, for the message
 * @param fallback when the flag is absent
 */
export function parseCount(value: string | undefined, flag: string, fallback: number): number {
  return parseIntFlag(value, flag, { min: 0 }, fallback)
}

/**
 * Parses a flag that takes one of a fixed set of words.
 * @param value the flag's value
 * @param flag its name, for the message
 * @param valid the valid values
 * @param fallback when the flag is absent
 * @example
 * const target = parseChoice(values.target, '--target', ['openwhisk', 'local'] as const, 'openwhisk')
 */
export function parseChoice<const T extends string>(
  value: string | undefined,
  flag: string,
  valid: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback
  if (!(valid as readonly string[]).includes(value)) throw usageError(flag, `one of ${valid.join(', ')}`, value)
  return value as T
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/i

/**
 * Parses an ISO 8601 date or timestamp flag (`2026-11-01`, `2026-11-01T09:30:00Z`, `2026-11-01T09:30+09:00`; no
 * zone means UTC) to epoch milliseconds. An impossible date (February 30) is refused, not rolled over.
 * @param value the flag's value
 * @param flag its name, for the message
 * @example
 * const since = parseIsoDate(values.since, '--since') // 2026-11-01 -> 1793491200000
 */
export function parseIsoDate(value: string, flag: string): number {
  const invalid = () =>
    usageError(flag, 'an ISO 8601 date or timestamp such as 2026-11-01 or 2026-11-01T09:30:00Z', value)
  const m = ISO_DATE.exec(value.trim())
  if (m === null) throw invalid()
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map((x) => Number(x ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  const day = new Date(Date.UTC(y, mo - 1, d))
  if (day.getUTCFullYear() !== y || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) throw invalid()
  if (h > 23 || mi > 59 || s > 59) throw invalid()
  const zone = m[8] ?? 'Z'
  let offsetMinutes = 0
  if (zone.toUpperCase() !== 'Z') {
    const zh = Number(zone.slice(1, 3))
    const zm = Number(zone.slice(-2))
    if (zh > 23 || zm > 59) throw invalid()
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (zh * 60 + zm)
  }
  const millis = Number((m[7] ?? '').slice(0, 3).padEnd(3, '0'))
  return Date.UTC(y, mo - 1, d, h, mi, s, millis) - offsetMinutes * 60_000
}

const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i

/**
 * Parses an address to listen on or connect to: an IPv4 address, an IPv6 address (brackets optional) or a host name
 * (RFC 1123; a dotted all-numeric value must be a valid IPv4 address, so `256.1.1.1` is refused).
 * @param value the flag's value
 * @param flag its name, for the message
 * @param fallback when the flag is absent
 */
export function parseHost(value: string | undefined, flag: string, fallback: string): string {
  if (value === undefined) return fallback
  const bare = /^\[.*\]$/.test(value) ? value.slice(1, -1) : value
  if (isIP(bare) !== 0) return bare
  const labels = bare.split('.')
  const name =
    bare.length > 0 &&
    bare.length <= 253 &&
    labels.every((l) => HOST_LABEL.test(l)) &&
    !/^\d+$/.test(labels[labels.length - 1] ?? '')
  if (!name)
    throw usageError(
      flag,
      'an IPv4 address (each of the 4 parts 0-255, e.g. 127.0.0.1 or 0.0.0.0), an IPv6 address (::1, ::) or a host name (localhost)',
      value,
    )
  return bare
}

/**
 * Like {@link parseHost}, and a host name must resolve (so listening fails here with the flag's name, not later
 * with getaddrinfo's ENOTFOUND).
 * @param value the flag's value
 * @param flag its name, for the message
 * @param fallback when the flag is absent
 */
export async function resolveHost(value: string | undefined, flag: string, fallback: string): Promise<string> {
  const host = parseHost(value, flag, fallback)
  if (isIP(host) !== 0) return host
  try {
    await lookup(host)
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'lookup failed'
    throw new SovraError(
      'ERR_USAGE',
      `${flag}: host name ${JSON.stringify(host)} does not resolve (${code}); pass an IP address such as 127.0.0.1 or a name this machine resolves`,
      { cause: error },
    )
  }
  return host
}

/**
 * Parses an http(s) URL flag; the result has no trailing slash.
 * @param value the flag's value
 * @param flag its name, for the message
 */
export function parseUrlFlag(value: string, flag: string): string {
  let url: URL | undefined
  try {
    url = new URL(value)
  } catch {
    url = undefined
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw usageError(flag, 'an http:// or https:// URL such as http://127.0.0.1:8787', value)
  return value.replace(/\/+$/, '')
}

const FILE_ERRORS: Record<string, string> = {
  EISDIR: 'it is a folder, not a file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'a part of the path is not a folder',
}

function fileError(flag: string, path: string, action: 'read' | 'write', error: unknown): SovraError {
  const code = (error as { code?: string }).code ?? ''
  const missing = action === 'read' ? 'no such file' : 'its folder does not exist'
  const why = code === 'ENOENT' ? missing : (FILE_ERRORS[code] ?? (error as Error).message)
  return new SovraError('ERR_USAGE', `${flag}: cannot ${action} ${JSON.stringify(path)}: ${why} (${code || 'error'})`, {
    cause: error,
  })
}

/**
 * Reads the file a flag names (relative to the working folder); a missing or unreadable file is a usage error that
 * names the flag and the path.
 * @param path the path as given
 * @param flag its name, for the message
 * @example
 * const body = readFileFlag(values.file, '--file')
 */
export function readFileFlag(path: string, flag: string): Buffer {
  try {
    return readFileSync(resolve(path))
  } catch (error) {
    throw fileError(flag, path, 'read', error)
  }
}

/**
 * Writes the file a flag names (relative to the working folder); a missing folder or a refused write is a usage
 * error that names the flag and the path.
 * @param path the path as given
 * @param data what to write
 * @param flag its name, for the message
 * @param options file mode and the like
 */
export function writeFileFlag(
  path: string,
  data: string | Uint8Array,
  flag: string,
  options?: WriteFileOptions,
): string {
  const file = resolve(path)
  try {
    writeFileSync(file, data, options)
  } catch (error) {
    throw fileError(flag, path, 'write', error)
  }
  return file
}
