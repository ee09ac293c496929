import { existsSync, readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import * as v from 'valibot'
import { parse as parseToml, TomlError } from 'smol-toml'
import { SovraError } from '../core/errors.ts'
import { ConfigSchema, type Config } from './schema.ts'
import { ConfigError, issuesToDiagnostics, unknownKeyWarnings, type Diagnostic } from './diagnostics.ts'
import { resolveProject, type Project } from './resolve.ts'
import { loadSecrets } from './secrets.ts'

/** Config file names looked for, in order, when none is given. */
export const CONFIG_FILES = ['wrangler-compat.toml', 'wrangler.toml'] as const

/** Options for {@link loadConfig}. */
export interface LoadConfigOptions {
  /** The config file; default: `wrangler-compat.toml`, else `wrangler.toml`, in `cwd`. */
  configPath?: string | undefined
  /** Folder to look in and to resolve a relative `configPath` from; default `process.cwd()`. */
  cwd?: string
  /** `[env.NAME]` to apply. */
  env?: string | undefined
  /** Environment variables for `SOVRA_SECRET_*`; default `process.env`. */
  processEnv?: Record<string, string | undefined>
}

/** A loaded config: the project and the warnings found on the way. */
export interface LoadedConfig {
  project: Project
  warnings: Diagnostic[]
}

/**
 * Finds the config file: the given path, else `wrangler-compat.toml`, else `wrangler.toml`.
 * @param cwd the folder to look in
 * @param configPath an explicit path
 */
export function findConfigFile(cwd: string, configPath?: string): string {
  if (configPath !== undefined) {
    const file = isAbsolute(configPath) ? configPath : resolve(cwd, configPath)
    if (!existsSync(file))
      throw new SovraError('ERR_CONFIG', `Config file not found: ${file} (from --config ${JSON.stringify(configPath)})`)
    return file
  }
  for (const name of CONFIG_FILES) {
    const file = resolve(cwd, name)
    if (existsSync(file)) return file
  }
  throw new SovraError(
    'ERR_CONFIG',
    `No config file in ${cwd}: looked for ${CONFIG_FILES.join(' and ')}. Pass --config FILE, or run "sovra init <dir>" to create a project.`,
  )
}

/**
 * Parses and validates a config document. Every problem is collected; throws one {@link ConfigError} when any is
 * an error. Exported separately from file loading so tests and tools can validate text.
 * @param text TOML source
 * @param file its path, for diagnostics and resolving relative paths
 */
export function parseConfig(text: string, file: string): { config: Config; warnings: Diagnostic[] } {
  let raw: unknown
  try {
    raw = parseToml(text)
  } catch (error) {
    if (error instanceof TomlError) {
      const firstLine = error.message.split('\n')[0] ?? error.message
      throw new ConfigError([
        {
          severity: 'error',
          file,
          line: error.line,
          column: error.column,
          message: `TOML syntax error: ${firstLine.replace(/^Invalid TOML document: /, '')}`,
        },
      ])
    }
    throw error
  }
  const warnings = unknownKeyWarnings(ConfigSchema, raw, file)
  const result = v.safeParse(ConfigSchema, raw)
  if (!result.success) throw new ConfigError([...issuesToDiagnostics(result.issues, file), ...warnings])
  return { config: result.output, warnings }
}

/**
 * Loads a project's config: finds the file, parses TOML, validates with the schema, applies `[env.NAME]`, resolves
 * every function and its secrets. Throws {@link ConfigError} with every diagnostic when anything is wrong.
 *
 * @param options where to look and what to apply
 * @example
 * const { project, warnings } = loadConfig({ cwd: process.cwd(), env: 'production' })
 * for (const fn of project.functions) console.log(fn.name, fn.routes)
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const cwd = options.cwd ?? process.cwd()
  const file = findConfigFile(cwd, options.configPath)
  const { config, warnings } = parseConfig(readFileSync(file, 'utf8'), file)
  const secrets = loadSecrets(dirname(file), options.env, options.processEnv ?? process.env)
  const { project, diagnostics } = resolveProject(config, { file, env: options.env, secrets })
  const all = [...warnings, ...diagnostics]
  if (all.some((d) => d.severity === 'error')) throw new ConfigError(all)
  return { project, warnings: all }
}
