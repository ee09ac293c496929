/**
 * `npm run bench:http`: the trivial JSON handler served by sovra's embedded host with isolates (concurrency 64 as
 * bench/fixtures/wrangler-compat.toml sets it, the default settings, and concurrency 1), by two bare
 * @hono/node-server apps (the limits: `hono` calls the handler module with `c.req.raw`, `hono fast` answers with
 * `c.json` and builds no Request) and by workerd (the peer, when installed under bench/peers); then the I/O-bound
 * case (a handler that waits 200 ms; limit = connections / 0.2 s) with default settings and concurrency 1, and
 * isolate cold start. Same load tool, same run. Writes bench/results/latest.json and prints a table.
 *
 * Env: BENCH_DURATION (s, default 10), BENCH_CONNECTIONS (default 50), BENCH_COLD_RUNS (default 20), BENCH_ONLY
 * (comma-separated result keys to run, e.g. "sovra,hono_fast"; default all), BENCH_COMPARE (another checkout of
 * sovra, e.g. a copy of the tree before a change: adds `sovra_compare`, the concurrency-64 case served from there,
 * measured just before `sovra` in the same run, for paired before/after figures).
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bundleFunction } from '../runtime/isolate/bundle.ts'
import { IsolatePool } from '../runtime/isolate/pool.ts'
import { SpareIsolates } from '../runtime/isolate/spares.ts'
import { HAS_WRK, serveAndMeasure, type LoadResult, type Skipped } from './load.ts'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const ROOT = join(HERE, '..')
const DURATION = Number(process.env['BENCH_DURATION'] ?? 10)
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 50)
const COLD_RUNS = Number(process.env['BENCH_COLD_RUNS'] ?? 20)
const ONLY = process.env['BENCH_ONLY']
  ?.split(',')
  .map((s) => s.trim())
  .filter((s) => s !== '')
const WORKERD = join(HERE, 'peers', 'node_modules', '.bin', 'workerd')
const COMPARE = process.env['BENCH_COMPARE']
const JSON_PATH = '/bench/path?q=1'
const IO_PATH = '/io/path?q=1'
/** The I/O case's limit: every connection waits 200 ms per request. */
const IO_LIMIT = CONNECTIONS / 0.2

/** One contender: a server process and the paths measured on it, by result key. */
interface Contender {
  start: (port: number) => ReturnType<typeof spawn>
  readyPath: string
  paths: Record<string, string>
}

/** What each result row is, for the table. */
const ROWS: Record<string, { server: string; case: 'json' | 'io'; settings: string }> = {
  sovra_compare: {
    server: `sovra from ${COMPARE ?? '(BENCH_COMPARE)'}`,
    case: 'json',
    settings: 'min 1, max 1, concurrency 64',
  },
  sovra: { server: 'sovra (embedded, isolates)', case: 'json', settings: 'min 1, max 1, concurrency 64' },
  sovra_defaults: { server: 'sovra (embedded, isolates)', case: 'json', settings: 'defaults' },
  sovra_concurrency_1: { server: 'sovra (embedded, isolates)', case: 'json', settings: 'max 2, concurrency 1' },
  hono: { server: 'bare @hono/node-server, handler(c.req.raw)', case: 'json', settings: '' },
  hono_fast: { server: 'bare @hono/node-server, c.json', case: 'json', settings: '' },
  workerd: { server: 'workerd serve', case: 'json', settings: '' },
  io_sovra_defaults: { server: 'sovra (embedded, isolates)', case: 'io', settings: 'defaults' },
  io_sovra_concurrency_1: { server: 'sovra (embedded, isolates)', case: 'io', settings: 'max 2, concurrency 1' },
  io_hono_fast: { server: 'bare @hono/node-server, c.json', case: 'io', settings: '' },
}

// The same flags as `npm start` (package.json); logs and metrics on, as it runs.
const sovra =
  (config: string, root = ROOT) =>
  (port: number) =>
    spawn(
      process.execPath,
      [
        '--max-semi-space-size=32',
        join(root, 'bin/sovra.js'),
        'start',
        '--config',
        join(HERE, 'fixtures', config),
        '--port',
        String(port),
      ],
      { stdio: 'ignore' },
    )
const node =
  (script: string, ...args: string[]) =>
  (port: number) =>
    spawn(process.execPath, ['--import', 'tsx', join(HERE, 'servers', script), String(port), ...args], {
      stdio: 'ignore',
      cwd: ROOT,
    })

const CONTENDERS: Contender[] = [
  ...(COMPARE === undefined
    ? []
    : [
        {
          start: sovra('wrangler-compat.toml', COMPARE),
          readyPath: '/_sovra/health',
          paths: { sovra_compare: JSON_PATH },
        },
      ]),
  { start: sovra('wrangler-compat.toml'), readyPath: '/_sovra/health', paths: { sovra: JSON_PATH } },
  {
    start: sovra('defaults.toml'),
    readyPath: '/_sovra/health',
    paths: { sovra_defaults: JSON_PATH, io_sovra_defaults: IO_PATH },
  },
  {
    start: sovra('concurrency-1.toml'),
    readyPath: '/_sovra/health',
    paths: { sovra_concurrency_1: JSON_PATH, io_sovra_concurrency_1: IO_PATH },
  },
  { start: node('hono-bare.ts'), readyPath: '/', paths: { hono: JSON_PATH } },
  { start: node('hono-fast.ts'), readyPath: '/', paths: { hono_fast: JSON_PATH } },
  { start: node('hono-fast.ts', 'io'), readyPath: '/', paths: { io_hono_fast: IO_PATH } },
  {
    start: (port) =>
      spawn(WORKERD, ['serve', join(HERE, 'fixtures/workerd.capnp'), '--socket-addr', `http=127.0.0.1:${port}`], {
        stdio: 'ignore',
      }),
    readyPath: '/',
    paths: { workerd: JSON_PATH },
  },
]

/** The cold start target (README, Benchmarks): new isolate to first response, p50. */
const COLD_START_TARGET_MS = 50

interface ColdStart {
  /** How the isolate's thread was had: a pre-started spare (what the host does) or a thread started from nothing. */
  thread: 'pre-started spare' | 'fresh'
  p50_ms: number
  p90_ms: number
  runs: number
  target_p50_ms: number
  met: boolean
}

/**
 * New isolate to first response: a pool for the handler is created, its isolate loads the bundle, one request is
 * answered. `withSpare` takes a pre-started thread (what the host does while a spare is ready); without it a thread
 * starts from nothing (a burst that outruns the spares, or the first isolate of a memory limit).
 */
async function coldStart(withSpare: boolean): Promise<ColdStart> {
  const bundle = await bundleFunction(
    { name: 'handler', main: join(HERE, 'fixtures', 'handler.js') },
    join(tmpdir(), 'sovra-bench'),
  )
  const spares = withSpare ? new SpareIsolates() : undefined
  spares?.take(128)
  const samples: number[] = []
  for (let i = 0; i < COLD_RUNS; i++) {
    // A sample "with a spare" must have one ready: the replacement spare of the last sample, booted.
    if (spares !== undefined) await sparesReady(spares, 128)
    else await new Promise((r) => setTimeout(r, 150))
    const t0 = performance.now()
    const pool = new IsolatePool({
      name: 'handler',
      bundle,
      env: { vars: {}, secrets: {} },
      limits: { timeout_ms: 5000, memory_mb: 128, max_body_bytes: 1 << 20 },
      isolates: { min: 1, max: 1, concurrency: 1, queue: 1 },
      ...(spares === undefined ? {} : { spares }),
    })
    await pool.start()
    const res = await pool.fetch(new Request('http://local/cold'))
    await res.arrayBuffer()
    samples.push(performance.now() - t0)
    await pool.close(0)
  }
  await spares?.close()
  samples.sort((a, b) => a - b)
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] as number
  return {
    thread: withSpare ? 'pre-started spare' : 'fresh',
    p50_ms: at(0.5),
    p90_ms: at(0.9),
    runs: samples.length,
    target_p50_ms: COLD_START_TARGET_MS,
    met: at(0.5) <= COLD_START_TARGET_MS,
  }
}

/**
 * Waits until a spare thread with this memory limit is there (10 s at most), then lets it boot as a spare kept idle
 * between two scale-outs would have: SpareIsolates lists a thread as soon as it is created and does not say when it
 * is online, so the settle time is fixed (300 ms: a thread boots in ~45-110 ms on the 2-core machine, README).
 */
async function sparesReady(spares: SpareIsolates, memoryMb: number): Promise<void> {
  const end = Date.now() + 10_000
  while (spares.count(memoryMb) === 0) {
    if (Date.now() > end) throw new Error(`no spare isolate thread (${memoryMb} MB) started within 10 s`)
    await new Promise((r) => setTimeout(r, 10))
  }
  await new Promise((r) => setTimeout(r, 300))
}

const load = (): string =>
  loadavg()
    .map((n) => n.toFixed(2))
    .join(', ')
const loadBefore = load()
const results: Record<string, LoadResult | Skipped> = {}
process.stderr.write(
  `load: ${HAS_WRK ? 'wrk -t1' : 'autocannon'} -c${CONNECTIONS} for ${DURATION}s each (after a 2 s warm-up), on ${cpus().length} cores; load average ${loadBefore}\n`,
)
for (const c of CONTENDERS) {
  const keys = Object.keys(c.paths).filter((k) => ONLY === undefined || ONLY.includes(k))
  if (keys.length === 0) continue
  if (keys.includes('workerd') && !existsSync(WORKERD)) {
    results['workerd'] = { skipped: 'workerd not installed: npm install --prefix bench/peers' }
    process.stderr.write('  workerd: skipped (npm install --prefix bench/peers)\n')
    continue
  }
  const measured = await serveAndMeasure(
    c.start,
    c.readyPath,
    Object.fromEntries(keys.map((k) => [k, c.paths[k] as string])),
    DURATION,
    CONNECTIONS,
  )
  for (const [key, r] of Object.entries(measured)) {
    results[key] = r
    process.stderr.write(
      `  ${key}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms, ${r.cpu_us_per_req ?? '?'} µs CPU/req (main thread ${r.main_thread_us_per_req ?? '?'}), errors ${r.errors}\n`,
    )
  }
}
const runCold = ONLY === undefined || ONLY.includes('cold')
const cold = runCold ? await coldStart(true) : undefined
const coldFresh = runCold ? await coldStart(false) : undefined
const loadAfter = load()

const rps = (k: string): number | undefined => {
  const r = results[k]
  return r !== undefined && 'rps' in r ? r.rps : undefined
}
const ratio = (a: number | undefined, b: number | undefined): number | null =>
  a !== undefined && b !== undefined ? Number((a / b).toFixed(2)) : null
const atLeast = (value: number | null | undefined, min: number): boolean | null =>
  value === null || value === undefined ? null : value >= min
const sovraJson = results['sovra']
const summary = {
  date: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    memory_gib: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    load_average_before: loadBefore,
    load_average_after: loadAfter,
  },
  load: {
    tool: HAS_WRK ? 'wrk -t1' : 'autocannon',
    connections: CONNECTIONS,
    duration_s: DURATION,
    io_limit_rps: IO_LIMIT,
  },
  results,
  ratios: {
    sovra_to_hono_fast: ratio(rps('sovra'), rps('hono_fast')),
    sovra_to_hono: ratio(rps('sovra'), rps('hono')),
    sovra_to_workerd: ratio(rps('sovra'), rps('workerd')),
    sovra_defaults_to_hono_fast: ratio(rps('sovra_defaults'), rps('hono_fast')),
    io_sovra_defaults_to_limit: ratio(rps('io_sovra_defaults'), IO_LIMIT),
  },
  cold_start: cold,
  cold_start_fresh_thread: coldFresh,
  targets: {} as Record<string, boolean | null>,
}
summary.targets = {
  'sovra (concurrency 64) >= 0.6x hono fast req/s': atLeast(summary.ratios.sovra_to_hono_fast, 0.6),
  'sovra (concurrency 64) >= 1.3x workerd req/s': atLeast(summary.ratios.sovra_to_workerd, 1.3),
  'sovra (concurrency 64) p99 <= 10 ms': sovraJson !== undefined && 'rps' in sovraJson ? sovraJson.p99_ms <= 10 : null,
  [`I/O case, defaults >= 0.9x the limit (${IO_LIMIT} req/s)`]: atLeast(summary.ratios.io_sovra_defaults_to_limit, 0.9),
  [`cold start p50 <= ${COLD_START_TARGET_MS} ms, pre-started spare thread`]: cold === undefined ? null : cold.met,
  [`cold start p50 <= ${COLD_START_TARGET_MS} ms, fresh thread (no spare ready)`]:
    coldFresh === undefined ? null : coldFresh.met,
}
mkdirSync(join(HERE, 'results'), { recursive: true })
writeFileSync(join(HERE, 'results', 'latest.json'), `${JSON.stringify(summary, null, 2)}\n`)
writeFileSync(
  join(HERE, 'results', `http-${summary.date.replace(/[:.]/g, '-')}.json`),
  `${JSON.stringify(summary, null, 2)}\n`,
)

const fmt = (n: number | null): string => (n === null ? '' : `${n.toFixed(2)}x`)
console.log(
  `\n| contender | case | isolates | req/s | / hono fast | / hono c.req.raw | p50 ms | p99 ms | CPU µs/req | errors |\n|---|---|---|---|---|---|---|---|---|---|`,
)
for (const [key, row] of Object.entries(ROWS)) {
  const r = results[key]
  if (r === undefined) continue
  if ('skipped' in r) {
    console.log(`| ${row.server} | ${row.case} | | skipped | | | | | | |`)
    continue
  }
  const base = row.case === 'io' ? 'io_hono_fast' : 'hono_fast'
  console.log(
    `| ${row.server} | ${row.case} | ${row.settings} | ${r.rps.toFixed(0)} | ${fmt(ratio(r.rps, rps(base)))} | ${row.case === 'io' ? '' : fmt(ratio(r.rps, rps('hono')))} | ${r.p50_ms.toFixed(2)} | ${r.p99_ms.toFixed(2)} | ${r.cpu_us_per_req ?? ''} | ${r.errors} |`,
  )
}
console.log(
  `\nsovra / hono fast: ${fmt(summary.ratios.sovra_to_hono_fast) || 'n/a'}   sovra / hono (c.req.raw): ${fmt(summary.ratios.sovra_to_hono) || 'n/a'}   sovra / workerd: ${fmt(summary.ratios.sovra_to_workerd) || 'n/a'}   I/O defaults / limit: ${fmt(summary.ratios.io_sovra_defaults_to_limit) || 'n/a'}`,
)
for (const c of [cold, coldFresh])
  if (c !== undefined)
    console.log(
      `cold start, ${c.thread} thread: p50 ${c.p50_ms.toFixed(1)} ms, p90 ${c.p90_ms.toFixed(1)} ms (${c.runs} runs); target p50 <= ${c.target_p50_ms} ms: ${c.met ? 'met' : 'MISSED'}`,
    )
console.log(`load average before / after: ${loadBefore} / ${loadAfter}`)
console.log(
  `targets: ${Object.entries(summary.targets)
    .map(([k, v]) => `${k}: ${v === null ? 'n/a' : v ? 'met' : 'MISSED'}`)
    .join('; ')}`,
)
console.log('written: bench/results/latest.json')
