import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const SOURCE_DIR = fileURLToPath(new URL('.', import.meta.url))
let cached: string | undefined

/**
 * Builds the isolate program (worker-main.ts and everything it imports) into one plain JS file, once per process,
 * named by its content, so a new isolate loads a single small file with no TypeScript loader.
 * @returns the path of the built script
 */
export function workerScriptPath(): string {
  if (cached !== undefined) return cached
  const result = esbuild.buildSync({
    entryPoints: [join(SOURCE_DIR, 'worker-main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    write: false,
    logLevel: 'silent',
  })
  const code = result.outputFiles[0]?.contents ?? new Uint8Array()
  const dir = join(tmpdir(), 'sovra-isolate')
  const file = join(dir, `worker-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`)
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true })
    // Write then rename, so two processes starting at once never load a half-written file.
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, code)
    renameSync(tmp, file)
  }
  cached = file
  return file
}

/**
 * Node flags for isolate threads: none of the host's (a TypeScript loader in the host must not load into every
 * isolate), except a CPU profiler when `SOVRA_ISOLATE_CPU_PROF=<dir>` asks for one (profiles are written when an
 * isolate stops).
 */
export function isolateExecArgv(): string[] {
  const dir = process.env['SOVRA_ISOLATE_CPU_PROF']
  return dir === undefined || dir === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', dir]
}
