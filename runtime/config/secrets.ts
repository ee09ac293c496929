import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { SovraError } from '../core/errors.ts'

/** Prefix of environment variables that carry secrets: `SOVRA_SECRET_API_KEY` sets the secret `API_KEY`. */
export const SECRET_ENV_PREFIX = 'SOVRA_SECRET_'

const REDACTED = '[redacted]'

/**
 * Secret values, kept out of every printable form: JSON, `util.inspect` and string conversion show names only,
 * so a secret cannot leak through a log line or `config check` by accident.
 */
export class SecretStore {
  readonly #values: Map<string, string>
  /** Where each secret came from (`.dev.vars`, `SOVRA_SECRET_X`), for diagnostics. */
  readonly sources: ReadonlyMap<string, string>

  /**
   * @param values name -> value
   * @param sources name -> where it was read from
   */
  constructor(values: Map<string, string>, sources: Map<string, string>) {
    this.#values = values
    this.sources = sources
  }

  /** The secret names, sorted. */
  names(): string[] {
    return [...this.#values.keys()].sort()
  }

  /** @param name a secret name */
  has(name: string): boolean {
    return this.#values.has(name)
  }

  /**
   * The values of the named secrets, for handing to an isolate (the only place values go).
   * @param names secret names; each must exist
   */
  pick(names: readonly string[]): Record<string, string> {
    const out: Record<string, string> = {}
    for (const n of names) {
      const value = this.#values.get(n)
      if (value !== undefined) out[n] = value
    }
    return out
  }

  toJSON(): Record<string, string> {
    return Object.fromEntries(this.names().map((n) => [n, REDACTED]))
  }

  toString(): string {
    return `SecretStore(${this.names().join(', ')})`
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString()
  }
}

/**
 * Parses a `.dev.vars` file (dotenv syntax: `KEY=value`, `#` comments, single or double quotes, `\n` in double
 * quotes, optional `export `).
 * @param text the file's contents
 * @param file its path, for error messages
 */
export function parseDevVars(text: string, file: string): Map<string, string> {
  const out = new Map<string, string>()
  const lines = text.split(/\r?\n/)
  lines.forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line)
    if (!m) {
      // Never echo the line: it may hold a secret value.
      throw new SovraError(
        'ERR_CONFIG',
        `${file}:${i + 1}: expected KEY=value (KEY of letters, digits and "_"), received a line that is not`,
      )
    }
    const key = m[1] as string
    let value = (m[2] ?? '').trim()
    const q = value[0]
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) {
      value = value.slice(1, -1)
      if (q === '"') value = value.replace(/\\n/g, '\n').replace(/\\"/g, '"')
    } else {
      const hash = value.indexOf(' #')
      if (hash >= 0) value = value.slice(0, hash).trimEnd()
    }
    out.set(key, value)
  })
  return out
}

/**
 * Loads secrets from `.dev.vars` (or `.dev.vars.<env>` when it exists, as wrangler does) in the config's folder,
 * then `SOVRA_SECRET_<NAME>` variables, which win.
 * @param dir the config file's folder
 * @param envName the selected environment, if any
 * @param processEnv the environment variables to read
 */
export function loadSecrets(
  dir: string,
  envName: string | undefined,
  processEnv: Record<string, string | undefined>,
): SecretStore {
  const values = new Map<string, string>()
  const sources = new Map<string, string>()
  const envFile = envName === undefined ? undefined : join(dir, `.dev.vars.${envName}`)
  const file = envFile !== undefined && existsSync(envFile) ? envFile : join(dir, '.dev.vars')
  if (existsSync(file)) {
    for (const [k, val] of parseDevVars(readFileSync(file, 'utf8'), file)) {
      values.set(k, val)
      sources.set(k, file)
    }
  }
  for (const [k, val] of Object.entries(processEnv)) {
    if (k.startsWith(SECRET_ENV_PREFIX) && k.length > SECRET_ENV_PREFIX.length && val !== undefined) {
      const n = k.slice(SECRET_ENV_PREFIX.length)
      values.set(n, val)
      sources.set(n, k)
    }
  }
  return new SecretStore(values, sources)
}
