/**
 * `npm run bench`: the trivial handler served by (a) sovra's embedded host with isolates, (b) a bare
 * @hono/node-server app (the limit) and (c) workerd (the peer), under the same load tool in the same run;
 * then isolate cold start. Writes bench/results/latest.json and prints a table.
 *
 * Env: BENCH_DURATION (s, default 10), BENCH_CONNECTIONS (default 50), BENCH_COLD_RUNS (default 20).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bundleFunction } from '../runtime/isolate/bundle.ts'
import { IsolatePool } from '../runtime/isolate/pool.ts'
import { SpareIsolates } from '../runtime/isolate/spares.ts'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const ROOT = join(HERE, '..')
const DURATION = Number(process.env['BENCH_DURATION'] ?? 10)
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 50)
const COLD_RUNS = Number(process.env['BENCH_COLD_RUNS'] ?? 20)
const WORKERD = join(HERE, 'peers', 'node_modules', '.bin', 'workerd')

interface LoadResult {
  rps: number
  p50_ms: number
  p99_ms: number
  requests: number
  errors: number
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

async function waitReady(url: string, child: ChildProcess): Promise<void> {
  const end = Date.now() + 30_000
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before it was ready`)
    try {
      if ((await fetch(url)).ok) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} not ready within 30 s`)
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value.trim())
  if (!m) return Number.NaN
  const n = Number(m[1])
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n
}

const hasWrk = spawnSync('wrk', ['--version']).error === undefined

function load(url: string, seconds: number): LoadResult {
  if (hasWrk) {
    const r = spawnSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', url], { encoding: 'utf8' })
    const out = r.stdout
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1])
    const p50 = toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '')
    const p99 = toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '')
    const requests = Number(/(\d+) requests in/.exec(out)?.[1])
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
    const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
    const errors = non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0)
    return { rps, p50_ms: p50, p99_ms: p99, requests, errors }
  }
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/autocannon/autocannon.js'), '-c', String(CONNECTIONS), '-d', String(seconds), '-j', url], { encoding: 'utf8', maxBuffer: 1 << 26 })
  const j = JSON.parse(r.stdout) as { requests: { average: number; total: number }; latency: { p50: number; p99: number }; errors: number; non2xx: number }
  return { rps: j.requests.average, p50_ms: j.latency.p50, p99_ms: j.latency.p99, requests: j.requests.total, errors: j.errors + j.non2xx }
}

async function contender(name: string, start: (port: number) => ChildProcess, readyPath: string): Promise<LoadResult | { skipped: string }> {
  const port = await freePort()
  const child = start(port)
  try {
    await waitReady(`http://127.0.0.1:${port}${readyPath}`, child)
    load(`http://127.0.0.1:${port}/bench/path?q=1`, Math.min(2, DURATION)) // warm-up: JIT, isolates, connections
    const result = load(`http://127.0.0.1:${port}/bench/path?q=1`, DURATION)
    process.stderr.write(`  ${name}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50_ms.toFixed(2)} ms, p99 ${result.p99_ms.toFixed(2)} ms, errors ${result.errors}\n`)
    return result
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
  }
}

interface ColdStart {
  p50_ms: number
  p90_ms: number
  runs: number
}

/**
 * New isolate to first response: a pool for the handler is created, its isolate loads the bundle, one request is
 * answered. `withSpare` takes a pre-started thread (what the host does); without it a thread starts from nothing.
 */
async function coldStart(withSpare: boolean): Promise<ColdStart> {
  const bundle = await bundleFunction({ name: 'handler', main: join(HERE, 'fixtures', 'handler.js') }, join(tmpdir(), 'sovra-bench'))
  const spares = withSpare ? new SpareIsolates() : undefined
  spares?.take(128)
  await new Promise((r) => setTimeout(r, 300))
  const samples: number[] = []
  for (let i = 0; i < COLD_RUNS; i++) {
    const t0 = performance.now()
    const pool = new IsolatePool({
      name: 'handler', bundle, env: { vars: {}, secrets: {} },
      limits: { timeout_ms: 5000, memory_mb: 128, max_body_bytes: 1 << 20 },
      isolates: { min: 1, max: 1, concurrency: 1, queue: 1 },
      ...(spares === undefined ? {} : { spares }),
    })
    await pool.start()
    const res = await pool.fetch(new Request('http://local/cold'))
    await res.arrayBuffer()
    samples.push(performance.now() - t0)
    await pool.close(0)
    // Let the replacement spare start, as it would between scale-outs.
    await new Promise((r) => setTimeout(r, 150))
  }
  await spares?.close()
  samples.sort((a, b) => a - b)
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] as number
  return { p50_ms: at(0.5), p90_ms: at(0.9), runs: samples.length }
}

const results: Record<string, LoadResult | { skipped: string }> = {}
process.stderr.write(`load: ${hasWrk ? 'wrk -t1' : 'autocannon'} -c${CONNECTIONS} for ${DURATION}s each, on ${cpus().length} cores\n`)
results['sovra'] = await contender('sovra (embedded host, isolates)', (port) =>
  // The same flags as `npm start` (package.json).
  spawn(process.execPath, ['--max-semi-space-size=32', join(ROOT, 'bin/sovra.js'), 'start', '--config', join(HERE, 'fixtures/wrangler-compat.toml'), '--port', String(port)], { stdio: 'ignore' }), '/_sovra/health')
results['hono'] = await contender('bare @hono/node-server (in-process)', (port) =>
  spawn(process.execPath, ['--import', 'tsx', join(HERE, 'servers/hono-bare.ts'), String(port)], { stdio: 'ignore', cwd: ROOT }), '/')
if (existsSync(WORKERD)) {
  results['workerd'] = await contender('workerd serve', (port) =>
    spawn(WORKERD, ['serve', join(HERE, 'fixtures/workerd.capnp'), '--socket-addr', `http=127.0.0.1:${port}`], { stdio: 'ignore' }), '/')
} else {
  results['workerd'] = { skipped: 'workerd not installed: npm install --prefix bench/peers' }
  process.stderr.write('  workerd: skipped (npm install --prefix bench/peers)\n')
}
const cold = await coldStart(true)
const coldFresh = await coldStart(false)

const rps = (k: string) => ('rps' in (results[k] ?? {}) ? (results[k] as LoadResult).rps : undefined)
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined ? Number((a / b).toFixed(2)) : null)
const sovra = results['sovra'] as LoadResult
const summary = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memory_gib: Math.round(totalmem() / 2 ** 30), node: process.version },
  load: { tool: hasWrk ? 'wrk -t1' : 'autocannon', connections: CONNECTIONS, duration_s: DURATION },
  results,
  ratios: { sovra_to_hono: ratio(rps('sovra'), rps('hono')), sovra_to_workerd: ratio(rps('sovra'), rps('workerd')) },
  cold_start: cold,
  cold_start_fresh_thread: coldFresh,
  targets: {
    'sovra >= 0.6x hono req/s': (ratio(rps('sovra'), rps('hono')) ?? 0) >= 0.6,
    'sovra >= 1.3x workerd req/s': ratio(rps('sovra'), rps('workerd')) === null ? null : (ratio(rps('sovra'), rps('workerd')) ?? 0) >= 1.3,
    'p99 <= 10 ms': sovra.p99_ms <= 10,
    'cold start p50 <= 50 ms': cold.p50_ms <= 50,
  },
}
mkdirSync(join(HERE, 'results'), { recursive: true })
writeFileSync(join(HERE, 'results', 'latest.json'), `${JSON.stringify(summary, null, 2)}\n`)

const row = (name: string, r: LoadResult | { skipped: string } | undefined) =>
  r === undefined || 'skipped' in r ? `| ${name} | skipped | | | |` : `| ${name} | ${r.rps.toFixed(0)} | ${r.p50_ms.toFixed(2)} | ${r.p99_ms.toFixed(2)} | ${r.errors} |`
console.log(`\n| server | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|`)
console.log(row('sovra (embedded, isolates)', results['sovra']))
console.log(row('bare @hono/node-server', results['hono']))
console.log(row('workerd', results['workerd']))
console.log(`\nsovra / hono: ${summary.ratios.sovra_to_hono}x   sovra / workerd: ${summary.ratios.sovra_to_workerd}x   cold start p50 ${cold.p50_ms.toFixed(1)} ms (p90 ${cold.p90_ms.toFixed(1)} ms, ${cold.runs} runs; from a fresh thread: p50 ${coldFresh.p50_ms.toFixed(1)} ms)`)
console.log(`targets: ${Object.entries(summary.targets).map(([k, v]) => `${k}: ${v === null ? 'n/a' : v ? 'met' : 'MISSED'}`).join('; ')}`)
console.log(`written: bench/results/latest.json`)
