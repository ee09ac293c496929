import { cpSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll } from 'vitest'
import type { HostLogger } from '../runtime/hosts/local/observer.ts'

/** The repository root. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** Test fixture functions. */
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'functions')
/**
 * The timeout for a hook that bundles, deploys, loads a model or starts servers: such setup ran past 30 s on a busy
 * 2-core CI machine (issue 10, deploy.test.ts), and a timed-out hook fails its whole file.
 */
export const HEAVY_HOOK_MS = 120_000

/**
 * Creates a temporary project folder with the given files; removed after the test file.
 * @param files relative path -> contents
 */
export function tempProject(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sovra-test-'))
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Copies the fixture functions into a project folder under `fixtures/`. */
export function withFixtures(dir: string): string {
  cpSync(FIXTURES, join(dir, 'fixtures'), { recursive: true })
  return dir
}

/** A logger that keeps every line, for asserting on structured logs. */
export function captureLogger(): HostLogger & {
  lines: Array<Record<string, unknown> & { level: string; msg: string }>
} {
  const lines: Array<Record<string, unknown> & { level: string; msg: string }> = []
  return {
    lines,
    info: (fields, msg) => void lines.push({ ...fields, level: 'info', msg }),
    warn: (fields, msg) => void lines.push({ ...fields, level: 'warn', msg }),
    error: (fields, msg) => void lines.push({ ...fields, level: 'error', msg }),
  }
}

/**
 * Waits until `check` returns a truthy value (polling), or fails after `timeoutMs`.
 * @param check the condition
 * @param timeoutMs how long to wait
 */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/**
 * Runs the `sovra` command line in this process and captures what it writes.
 * @param args the arguments after `sovra`
 */
export async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { main } = await import('../runtime/cli/main.ts')
  let out = ''
  let err = ''
  const decoder = new TextDecoder()
  const code = await main(args, {
    out: (s) => void (out += `${s}\n`),
    err: (s) => void (err += `${s}\n`),
    write: (s) => void (out += s),
    // Object bodies arrive as bytes; tests compare them as UTF-8 text (binary tests capture bytes themselves).
    bytes: (b) => void (out += decoder.decode(b, { stream: true })),
  })
  return { code, out, err }
}
