/**
 * The OpenWhisk target's own cost: (1) per invocation, the action entry (web params -> Request -> fetch -> result)
 * vs calling the function's `fetch` directly with an equivalent Request, both in this process on the built action
 * (so the platform's own time is excluded); (2) the size of each built action and of the function bundle inside
 * it. Writes bench/results/openwhisk.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { buildAction } from '../infra/targets/openwhisk/build.ts'
import { loadConfig } from '../runtime/config/load.ts'
import type { ExecutionContext, FunctionModule } from '../runtime/core/index.ts'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const N = Number(process.env['BENCH_OW_ITERATIONS'] ?? 20_000)
const out = mkdtempSync(join(tmpdir(), 'sovra-bench-ow-'))
const require = createRequire(import.meta.url)

try {
  const dir = mkdtempSync(join(tmpdir(), 'sovra-bench-owp-'))
  writeFileSync(
    join(dir, 'wrangler-compat.toml'),
    `
name = "bench"
[[functions]]
name = "echo"
main = "${join(ROOT, 'functions/echo/index.ts')}"
routes = ["/v1/echo"]
[[functions]]
name = "ask"
main = "${join(ROOT, 'functions/ask/index.ts')}"
routes = ["/v1/ask"]
ai = { binding = "AI" }
[[functions]]
name = "docs"
main = "${join(ROOT, 'test/fixtures/functions/docs.ts')}"
routes = ["/docs"]
r2_buckets = [{ binding = "DOCS", bucket_name = "documents" }]
`,
  )
  const { project } = loadConfig({ configPath: join(dir, 'wrangler-compat.toml'), env: undefined })
  const sizes: Array<Record<string, unknown>> = []
  for (const fn of project.functions) {
    const t0 = performance.now()
    const a = await buildAction(fn, out, dir)
    sizes.push({
      function: fn.name,
      action_bytes: a.bytes,
      bundle_bytes: a.bundle.bytes,
      build_ms: Math.round(performance.now() - t0),
      note: fn.bindings.some((b) => b.type === 'bucket') ? 'includes the S3 client (bucket binding)' : '',
    })
  }
  const echo = await buildAction(
    project.functions.find((f) => f.name === 'echo')!,
    out,
    dir,
  )
  const action = require(echo.path) as { main: (p: Record<string, unknown>) => Promise<Record<string, unknown>> }
  // The same function bundle the action wraps, called without the entry.
  const mod = (await import(pathToFileURL(echo.bundle.path).href)) as {
    default: FunctionModule<Record<string, unknown>>
  }
  const params = {
    __ow_method: 'post',
    __ow_path: '/v1/echo/x',
    __ow_query: 'a=1&b=2',
    __ow_headers: { host: 'ow', 'content-type': 'application/json', 'x-request-id': 'r1' },
    __ow_body: Buffer.from('{"q":"hello"}').toString('base64'),
    __sovra: { vars: {} },
  }
  const ctx: ExecutionContext = {
    waitUntil: () => undefined,
    signal: new AbortController().signal,
    deadline: Date.now() + 60_000,
    invocation: { id: 'b', function: 'echo', version: 'b', trigger: 'http' },
    principal: undefined,
  }
  const direct = async (): Promise<void> => {
    const req = new Request('https://ow/v1/echo/x?a=1&b=2', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'r1' },
      body: '{"q":"hello"}',
    })
    const res = await (mod.default.fetch as NonNullable<FunctionModule<Record<string, unknown>>['fetch']>)(req, {}, ctx)
    await res.text()
  }
  const viaEntry = async (): Promise<void> => {
    const r = await action.main(params)
    if (r['statusCode'] !== 200) throw new Error(`unexpected ${JSON.stringify(r).slice(0, 200)}`)
  }
  const time = async (f: () => Promise<void>): Promise<number> => {
    for (let i = 0; i < 2000; i++) await f()
    const t = performance.now()
    for (let i = 0; i < N; i++) await f()
    return ((performance.now() - t) * 1000) / N
  }
  const rounds: Array<{ direct_us: number; entry_us: number }> = []
  for (let r = 0; r < 3; r++) rounds.push({ direct_us: await time(direct), entry_us: await time(viaEntry) })
  const med = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
  const d = med(rounds.map((r) => r.direct_us))
  const e = med(rounds.map((r) => r.entry_us))
  const machine = `${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, node ${process.version}`
  console.log(`Machine: ${machine}; ${new Date().toISOString()}; ${N} invocations x 3 rounds (median)\n`)
  console.log('| path (echo, POST with a JSON body) | µs per invocation |\n|---|---|')
  console.log(
    `| fetch called directly | ${d.toFixed(1)} |\n| OpenWhisk entry: params -> Request -> fetch -> result | ${e.toFixed(1)} |\n| entry overhead | ${(e - d).toFixed(1)} (${(e / d).toFixed(2)}x) |\n`,
  )
  console.log('| function | action bytes | function bundle bytes | build ms | note |\n|---|---|---|---|---|')
  for (const s of sizes)
    console.log(
      `| ${String(s['function'])} | ${String(s['action_bytes'])} | ${String(s['bundle_bytes'])} | ${String(s['build_ms'])} | ${String(s['note'])} |`,
    )
  mkdirSync(join(HERE, 'results'), { recursive: true })
  writeFileSync(
    join(HERE, 'results', 'openwhisk.json'),
    `${JSON.stringify({ date: new Date().toISOString(), machine, iterations: N, rounds, direct_us: d, entry_us: e, sizes }, null, 2)}\n`,
  )
  rmSync(dir, { recursive: true, force: true })
} finally {
  rmSync(out, { recursive: true, force: true })
}
