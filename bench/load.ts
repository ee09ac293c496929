/**
 * The load side of `npm run bench:http`: starts a server process, drives it with wrk (autocannon when wrk is not
 * installed) and reads the server's CPU time from /proc, so each contender is measured the same way in one run.
 */
import { spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..')

/** What one load run measured. */
export interface LoadResult {
  rps: number
  p50_ms: number
  p99_ms: number
  requests: number
  errors: number
  /**
   * CPU time of the server process (every thread) per request, µs. On a shared machine req/s moves with what else
   * runs; CPU per request is the cost itself, so it is the steadier figure for before/after comparisons.
   */
  cpu_us_per_req: number | null
  /** The same for the process's main thread alone (in sovra: the host thread, where HTTP is served). */
  main_thread_us_per_req: number | null
}

/** A contender that could not run (workerd not installed). */
export interface Skipped {
  skipped: string
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

/**
 * Waits until a server answers 200 on `url` (60 s at most), failing early when its process exits.
 * @param url the readiness URL
 * @param child the server process
 */
export async function waitReady(url: string, child: ChildProcess): Promise<void> {
  const end = Date.now() + 60_000
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before it was ready`)
    try {
      if ((await fetch(url)).ok) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} not ready within 60 s`)
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value.trim())
  if (!m) return Number.NaN
  const n = Number(m[1])
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n
}

/** The load tool: wrk when installed (lighter than autocannon, which shares the same 2 cores), else autocannon. */
export const HAS_WRK = spawnSync('wrk', ['--version']).error === undefined

/** CPU time (user + system, all threads) of a process so far, in clock ticks (1/100 s on Linux); null elsewhere. */
function cpuTicks(pid: number | undefined, thread = false): number | null {
  if (pid === undefined) return null
  try {
    // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14 and 15.
    // The process's stat sums every thread; task/<pid>/stat is the main thread alone.
    const stat = readFileSync(thread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return null
  }
}

function runLoad(
  url: string,
  seconds: number,
  connections: number,
): Omit<LoadResult, 'cpu_us_per_req' | 'main_thread_us_per_req'> {
  if (HAS_WRK) {
    const r = spawnSync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url], { encoding: 'utf8' })
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
  const r = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules/autocannon/autocannon.js'), '-c', String(connections), '-d', String(seconds), '-j', url],
    { encoding: 'utf8', maxBuffer: 1 << 26 },
  )
  const j = JSON.parse(r.stdout) as {
    requests: { average: number; total: number }
    latency: { p50: number; p99: number }
    errors: number
    non2xx: number
  }
  return {
    rps: j.requests.average,
    p50_ms: j.latency.p50,
    p99_ms: j.latency.p99,
    requests: j.requests.total,
    errors: j.errors + j.non2xx,
  }
}

/**
 * Measures one URL: a warm-up (JIT, isolates, connections), then the measured run with the server's CPU time.
 * @param url the URL to load
 * @param pid the server process, for its CPU time
 * @param seconds the measured duration
 * @param connections concurrent connections
 * @param warmupSeconds the warm-up before it (default 2 s, or the duration if shorter; 0 for none)
 */
export function measure(
  url: string,
  pid: number | undefined,
  seconds: number,
  connections: number,
  warmupSeconds = Math.min(2, seconds),
): LoadResult {
  if (warmupSeconds > 0) runLoad(url, warmupSeconds, connections)
  const before = cpuTicks(pid)
  const mainBefore = cpuTicks(pid, true)
  const result = runLoad(url, seconds, connections)
  const after = cpuTicks(pid)
  const mainAfter = cpuTicks(pid, true)
  const perRequest = (a: number | null, b: number | null): number | null =>
    a === null || b === null || !(result.requests > 0) ? null : Math.round(((b - a) * 10_000) / result.requests)
  return {
    ...result,
    cpu_us_per_req: perRequest(before, after),
    main_thread_us_per_req: perRequest(mainBefore, mainAfter),
  }
}

/**
 * Starts a server, waits until `readyPath` answers, measures each path, and stops it.
 * @param start spawns the server on a port
 * @param readyPath a path that answers 200 once the server is ready
 * @param paths what to load, by result key
 * @param seconds the measured duration of each path
 * @param connections concurrent connections
 */
export async function serveAndMeasure(
  start: (port: number) => ChildProcess,
  readyPath: string,
  paths: Record<string, string>,
  seconds: number,
  connections: number,
): Promise<Record<string, LoadResult>> {
  const port = await freePort()
  const child = start(port)
  const out: Record<string, LoadResult> = {}
  try {
    await waitReady(`http://127.0.0.1:${port}${readyPath}`, child)
    for (const [key, path] of Object.entries(paths))
      out[key] = measure(`http://127.0.0.1:${port}${path}`, child.pid, seconds, connections)
    return out
  } finally {
    child.kill('SIGTERM')
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r))
  }
}
