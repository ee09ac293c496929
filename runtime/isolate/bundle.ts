import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'
import { SovraError } from '../core/errors.ts'

/** The core module functions get when they `import ... from 'sovra'`: always the core of the sovra running them. */
export const CORE_ENTRY = fileURLToPath(new URL('../core/index.ts', import.meta.url))

/** A built function bundle: one ESM file, the unit every host runs and the OpenWhisk target ships. */
export interface FunctionBundle {
  /** Function name. */
  name: string
  /** Path of the bundle file. */
  path: string
  /** sha256 hex of the bundle's bytes. */
  sha256: string
  /** First 12 hex digits of sha256: the version until versions are managed. */
  version: string
  bytes: number
}

/** Resolves `sovra` to our own core, so a project needs no copy of sovra under node_modules to build. */
const sovraAlias: esbuild.Plugin = {
  name: 'sovra-core',
  setup(build) {
    build.onResolve({ filter: /^sovra$/ }, () => ({ path: CORE_ENTRY }))
  },
}

/**
 * esbuild options for a function bundle: ESM, platform-neutral (Web APIs only, so `node:*` imports fail the
 * build, per the function contract), `workerd`/`worker`/`browser` export conditions like wrangler.
 * @param main the function's entry module
 */
export function bundleOptions(main: string): esbuild.BuildOptions {
  return {
    entryPoints: [main],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser', 'import'],
    mainFields: ['module', 'main'],
    write: false,
    sourcemap: false,
    minify: false,
    legalComments: 'none',
    logLevel: 'silent',
    plugins: [sovraAlias],
  }
}

/**
 * Turns esbuild's failure into ERR_BUILD naming the file, line and column of each error.
 * @param name the function
 * @param error what esbuild threw
 * @param cwd folder paths are shown relative to
 */
export function buildError(name: string, error: unknown, cwd: string): SovraError {
  const errors = (error as { errors?: esbuild.Message[] }).errors
  if (!Array.isArray(errors))
    return new SovraError('ERR_BUILD', `Could not bundle function "${name}": ${String(error)}`, { cause: error })
  const lines = errors.map((m) => {
    const at = m.location
      ? `${relative(cwd, m.location.file) || m.location.file}:${m.location.line}:${m.location.column + 1}: `
      : ''
    const hint = /node:|Could not resolve "(fs|path|crypto|os|child_process|net|http)"/.test(m.text)
      ? ' (functions use Web APIs and env bindings only; node:* modules are not available to them)'
      : ''
    return `  ${at}${m.text}${hint}`
  })
  return new SovraError('ERR_BUILD', `Could not bundle function "${name}":\n${lines.join('\n')}`, { cause: error })
}

/**
 * Writes bundle bytes to `<outDir>/<name>.<version>.mjs` and describes them.
 * @param name the function
 * @param code the bundle
 * @param outDir where bundles live
 */
export function writeBundle(name: string, code: Uint8Array, outDir: string): FunctionBundle {
  const sha256 = createHash('sha256').update(code).digest('hex')
  const version = sha256.slice(0, 12)
  const path = join(outDir, `${name}.${version}.mjs`)
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, code)
  pruneBundles(name, outDir, path)
  return { name, path, sha256, version, bytes: code.byteLength }
}

/** Bundles kept per function besides the current one (dev writes one per save). */
export const KEEP_OLD_BUNDLES = 3

// Isolates have their module in memory once loaded, so removing an old file never breaks one still running.
function pruneBundles(name: string, outDir: string, current: string): void {
  const pattern = new RegExp(`^${name.replace(/[-]/g, '\\-')}\\.[0-9a-f]{12}\\.mjs$`)
  const old = readdirSync(outDir)
    .filter((f) => pattern.test(f) && join(outDir, f) !== current)
    .map((f) => ({ file: join(outDir, f), mtime: statSync(join(outDir, f)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime)
  for (const { file } of old.slice(KEEP_OLD_BUNDLES)) rmSync(file, { force: true })
}

/**
 * Bundles one function with esbuild into a single ESM file.
 * @param fn the function's name and entry module
 * @param outDir where to write the bundle (e.g. `.sovra/build`)
 * @example
 * const bundle = await bundleFunction({ name: 'echo', main: 'functions/echo/index.ts' }, '.sovra/build')
 */
export async function bundleFunction(fn: { name: string; main: string }, outDir: string): Promise<FunctionBundle> {
  let result: esbuild.BuildResult
  try {
    result = await esbuild.build(bundleOptions(fn.main))
  } catch (error) {
    throw buildError(fn.name, error, process.cwd())
  }
  const out = result.outputFiles?.[0]
  if (out === undefined)
    throw new SovraError('ERR_BUILD', `Could not bundle function "${fn.name}": esbuild produced no output`)
  return writeBundle(fn.name, out.contents, outDir)
}
