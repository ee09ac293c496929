import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const SOURCE_DIR = fileURLToPath(new URL('.', import.meta.url))
let cached: string | undefined

/**
 * Builds the isolate program (worker-main.ts and what it imports) into one plain JS file, once per content, so a
 * new isolate loads a single small file with no TypeScript loader: this is most of the cold-start budget.
 * @returns the path of the built script
 */
export function workerScriptPath(): string {
  if (cached !== undefined) return cached
  const sources = ['worker-main.ts', 'codec.ts', 'fast-response.ts', 'light-request.ts'].map((f) => readFileSync(join(SOURCE_DIR, f)))
  const key = createHash('sha256')
  for (const s of sources) key.update(s)
  const dir = join(tmpdir(), 'sovra-isolate')
  const file = join(dir, `worker-${key.digest('hex').slice(0, 16)}.mjs`)
  if (!existsSync(file)) {
    const result = esbuild.buildSync({
      entryPoints: [join(SOURCE_DIR, 'worker-main.ts')],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      logLevel: 'silent',
    })
    mkdirSync(dir, { recursive: true })
    // Write then rename, so two processes starting at once never load a half-written file.
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, result.outputFiles[0]?.contents ?? new Uint8Array())
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
