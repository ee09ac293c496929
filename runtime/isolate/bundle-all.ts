import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as esbuild from 'esbuild'
import { SovraError } from '../core/errors.ts'
import { bundleOptions, buildError, KEEP_OLD_BUNDLES, type FunctionBundle } from './bundle.ts'

/** How far {@link bundleFunctions} got: reported at the start, after each distinct build (at most once a second), and at the end. */
export interface BundleProgress {
  phase: 'start' | 'built' | 'done'
  /** Functions to bundle. */
  functions: number
  /** Distinct bundles among them (functions with the same entry share one). */
  distinct: number
  /** Distinct bundles built so far. */
  built: number
  /** Milliseconds since the start. */
  elapsedMs: number
}

/** Options for {@link bundleFunctions}. */
export interface BundleAllOptions {
  /** Called with progress; see {@link BundleProgress}. */
  onProgress?: ((progress: BundleProgress) => void) | undefined
  /** esbuild builds at a time (default 4): each holds its output in memory until it is written. */
  concurrency?: number
}

/**
 * One line for a progress report: "building 150000 functions: 12 distinct bundles", "built 5 of 12 bundles", ...
 * @param p the report
 */
export function describeProgress(p: BundleProgress): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`
  if (p.phase === 'start')
    return `building ${plural(p.functions, 'function')}: ${plural(p.distinct, 'distinct bundle')}`
  if (p.phase === 'built') return `built ${p.built} of ${plural(p.distinct, 'bundle')}`
  return `built ${plural(p.distinct, 'bundle')} for ${plural(p.functions, 'function')} in ${p.elapsedMs} ms`
}

/** How often `built` progress is reported at most. */
const PROGRESS_INTERVAL_MS = 1000

/**
 * Bundles many functions, building each distinct entry once: functions whose `main` is the same module get the
 * same bytes (the esbuild options depend on the entry only, see `bundleOptions`), so 150 000 functions on 12 entry
 * modules cost 12 esbuild builds, not 150 000 (issue 11, R10). Each function still gets its own
 * `<name>.<version>.mjs`, as {@link bundleFunction} writes it, so reloading one never touches another's file.
 * @param fns the functions' names and entry modules
 * @param outDir where bundles live
 * @param options progress callback, build concurrency
 * @example
 * const bundles = await bundleFunctions(project.functions, '.sovra/build', { onProgress: (p) => console.log(p) })
 */
export async function bundleFunctions(
  fns: readonly { name: string; main: string }[],
  outDir: string,
  options: BundleAllOptions = {},
): Promise<FunctionBundle[]> {
  const started = Date.now()
  const byEntry = new Map<string, string>()
  for (const fn of fns) if (!byEntry.has(fn.main)) byEntry.set(fn.main, fn.name)
  const entries = [...byEntry]
  const report = (phase: BundleProgress['phase'], built: number) =>
    options.onProgress?.({
      phase,
      functions: fns.length,
      distinct: entries.length,
      built,
      elapsedMs: Date.now() - started,
    })
  report('start', 0)
  const code = new Map<string, { bytes: Uint8Array; sha256: string }>()
  let built = 0
  let reportedAt = started
  let next = 0
  const worker = async () => {
    while (next < entries.length) {
      const [main, firstName] = entries[next++] as [string, string]
      let result: esbuild.BuildResult
      try {
        result = await esbuild.build(bundleOptions(main))
      } catch (error) {
        throw buildError(firstName, error, process.cwd())
      }
      const out = result.outputFiles?.[0]
      if (out === undefined)
        throw new SovraError('ERR_BUILD', `Could not bundle function "${firstName}": esbuild produced no output`)
      code.set(main, { bytes: out.contents, sha256: createHash('sha256').update(out.contents).digest('hex') })
      built++
      if (Date.now() - reportedAt >= PROGRESS_INTERVAL_MS && built < entries.length) {
        reportedAt = Date.now()
        report('built', built)
      }
    }
  }
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 4, entries.length))
  await Promise.all(Array.from({ length: concurrency }, worker))
  mkdirSync(outDir, { recursive: true })
  // One listing for all functions: listing the folder once per function is quadratic in the function count.
  const existing = readdirSync(outDir)
  const bundles = fns.map((fn) => {
    const { bytes, sha256 } = code.get(fn.main) as { bytes: Uint8Array; sha256: string }
    const version = sha256.slice(0, 12)
    const file = `${fn.name}.${version}.mjs`
    const path = join(outDir, file)
    writeFileSync(path, bytes)
    return { name: fn.name, path, sha256, version, bytes: bytes.byteLength }
  })
  pruneOld(outDir, existing, bundles)
  report('done', entries.length)
  return bundles
}

// Keeps KEEP_OLD_BUNDLES older bundles per function besides the current one, as writeBundle does for one function.
function pruneOld(outDir: string, existing: string[], bundles: FunctionBundle[]): void {
  const current = new Map(bundles.map((b) => [b.name, `${b.name}.${b.version}.mjs`]))
  const old = new Map<string, string[]>()
  for (const file of existing) {
    const m = /^(.+)\.[0-9a-f]{12}\.mjs$/.exec(file)
    const name = m?.[1]
    if (name === undefined || !current.has(name) || current.get(name) === file) continue
    const files = old.get(name)
    if (files === undefined) old.set(name, [file])
    else files.push(file)
  }
  for (const files of old.values()) {
    if (files.length <= KEEP_OLD_BUNDLES) continue
    const byAge = files
      .map((f) => ({ file: join(outDir, f), mtime: statSync(join(outDir, f)).mtimeMs }))
      .sort((a, b) => b.mtime - a.mtime)
    for (const { file } of byAge.slice(KEEP_OLD_BUNDLES)) rmSync(file, { force: true })
  }
}
