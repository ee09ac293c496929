/**
 * `node --import tsx bench/ab.ts <other checkout>`: a paired before/after of sovra's request path. The benchmark
 * project (concurrency 64, bench/fixtures/wrangler-compat.toml) is served by this checkout and by another one
 * (e.g. a copy of the tree before a change) at the same time, with the fast hono baseline; then short wrk runs
 * alternate between them, round after round, in a new random order each round. On a shared machine whose load
 * moves by 50% within a minute, one long run per server compares different moments; paired rounds compare the
 * same ones. Prints each round and the medians of CPU µs per request (whole process and main thread) and req/s.
 *
 * Env: AB_ROUNDS (default 8), AB_SECONDS (per measurement, default 4), BENCH_CONNECTIONS (default 50).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, measure, waitReady, type LoadResult } from './load.ts'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const ROOT = join(HERE, '..')
const OTHER = process.argv[2]
if (OTHER === undefined) throw new Error('usage: node --import tsx bench/ab.ts <other sovra checkout>')
const ROUNDS = Number(process.env['AB_ROUNDS'] ?? 8)
const SECONDS = Number(process.env['AB_SECONDS'] ?? 4)
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 50)
const CONFIG = join(HERE, 'fixtures', 'wrangler-compat.toml')
const JSON_PATH = '/bench/path?q=1'

const sovra = (root: string, port: number): ChildProcess =>
  spawn(
    process.execPath,
    ['--max-semi-space-size=32', join(root, 'bin/sovra.js'), 'start', '--config', CONFIG, '--port', String(port)],
    { stdio: 'ignore' },
  )
const honoFast = (port: number): ChildProcess =>
  spawn(process.execPath, ['--import', 'tsx', join(HERE, 'servers', 'hono-fast.ts'), String(port)], {
    stdio: 'ignore',
    cwd: ROOT,
  })

interface Server {
  name: string
  url: string
  child: ChildProcess
  runs: LoadResult[]
}

async function start(name: string, spawnAt: (port: number) => ChildProcess, readyPath: string): Promise<Server> {
  const port = await freePort()
  const child = spawnAt(port)
  await waitReady(`http://127.0.0.1:${port}${readyPath}`, child)
  return { name, url: `http://127.0.0.1:${port}${JSON_PATH}`, child, runs: [] }
}

const servers = [
  await start('this', (p) => sovra(ROOT, p), '/_sovra/health'),
  await start('other', (p) => sovra(resolve(OTHER), p), '/_sovra/health'),
  await start('hono_fast', honoFast, '/'),
]
try {
  for (const s of servers) measure(s.url, s.child.pid, 2, CONNECTIONS, 0)
  for (let round = 1; round <= ROUNDS; round++) {
    const order = [...servers].sort(() => Math.random() - 0.5)
    const line: string[] = []
    for (const s of order) {
      const r = measure(s.url, s.child.pid, SECONDS, CONNECTIONS, 0)
      s.runs.push(r)
      line.push(`${s.name} ${r.rps.toFixed(0)} req/s ${r.cpu_us_per_req} µs (main ${r.main_thread_us_per_req})`)
    }
    process.stderr.write(`round ${round} (load ${loadavg()[0]?.toFixed(2)}): ${line.join(' | ')}\n`)
  }
} finally {
  for (const s of servers) s.child.kill('SIGTERM')
}
const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}
console.log(
  '\n| server | req/s (median) | CPU µs/req (median, min) | main thread µs/req (median, min) |\n|---|---|---|---|',
)
for (const s of servers) {
  const cpu = s.runs.map((r) => r.cpu_us_per_req ?? Number.NaN)
  const main = s.runs.map((r) => r.main_thread_us_per_req ?? Number.NaN)
  console.log(
    `| ${s.name === 'other' ? OTHER : s.name} | ${median(s.runs.map((r) => r.rps)).toFixed(0)} | ${median(cpu)}, ${Math.min(...cpu)} | ${median(main)}, ${Math.min(...main)} |`,
  )
}
// Paired: this minus other, round by round.
const [a, b] = servers as [Server, Server, Server]
const diffs = a.runs.map((r, i) => (r.cpu_us_per_req ?? 0) - (b.runs[i]?.cpu_us_per_req ?? 0))
const mainDiffs = a.runs.map((r, i) => (r.main_thread_us_per_req ?? 0) - (b.runs[i]?.main_thread_us_per_req ?? 0))
console.log(
  `\nthis - other, per round: CPU µs ${diffs.join(', ')} (median ${median(diffs)}); main thread ${mainDiffs.join(', ')} (median ${median(mainDiffs)})`,
)
