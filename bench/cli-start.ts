/**
 * `npm run bench:cli`: how long a `sovra` call takes from process start to exit (issue 11: "the CLI starts in well
 * under a second"). Each command runs BENCH_RUNS times (default 5) as its own process, `node bin/sovra.js ARGS`
 * from the project root, the way a user runs it; the table gives the median and the spread. Cases: the prebuilt
 * bundle (bin/cli-bundle.js: the normal path), the same commands with `SOVRA_CLI_TSX=1` (the TypeScript sources
 * through tsx, as every call ran before the bundle), a bare `node -e 0` (the floor), and the bundle's build (what
 * the first call after a source edit adds). Writes bench/results/cli-start.json.
 *
 * Wall time on a shared 2-core machine swings with the other processes; CPU time (user + sys, from GNU time when
 * /usr/bin/time exists) swings much less, so both are reported.
 *
 * Env: BENCH_RUNS (default 5); BENCH_COMPARE (another checkout of sovra, e.g. a copy of the tree before a change:
 * adds its figures for the same commands, run interleaved with this tree's, for paired before/after medians).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const ROOT = join(HERE, '..')
const RUNS = Number(process.env['BENCH_RUNS'] ?? 5)
const COMPARE = process.env['BENCH_COMPARE']

/** The commands measured: the cheap ones a user types most, and help for one with a heavy module graph. */
const COMMANDS = [['--help'], ['config', 'check'], ['triggers'], ['objects', 'put', '--help'], ['start', '--help']]

/** One measured case: a label and how to start it. */
interface Case {
  label: string
  root: string
  args: string[]
  env?: Record<string, string>
}

const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined
const TIMES = join(mkdtempSync(join(tmpdir(), 'sovra-bench-cli-')), 'times')

/**
 * Runs one case once and returns its wall and CPU time in milliseconds (CPU NaN without GNU time); a failed call
 * fails the bench (a fast wrong answer is no result).
 * @param c the case
 */
function once(c: Case): { wall: number; cpu: number } {
  const [command, args] =
    GNU_TIME === undefined
      ? [process.execPath, c.args]
      : [GNU_TIME, ['-f', '%U %S', '-o', TIMES, process.execPath, ...c.args]]
  const started = performance.now()
  const res = spawnSync(command, args, { cwd: c.root, env: { ...process.env, ...c.env }, encoding: 'utf8' })
  const wall = performance.now() - started
  if (res.status !== 0) throw new Error(`${c.label}: exit ${String(res.status)}\n${res.stderr}`)
  if (GNU_TIME === undefined) return { wall, cpu: NaN }
  const [user = NaN, sys = NaN] = readFileSync(TIMES, 'utf8').trim().split(/\s+/).map(Number)
  return { wall, cpu: (user + sys) * 1000 }
}

const cases: Case[] = [{ label: 'node -e 0 (floor)', root: ROOT, args: ['-e', '0'] }]
for (const argv of COMMANDS) {
  const name = `sovra ${argv.join(' ')}`
  const bin = (root: string): string[] => [join(root, 'bin', 'sovra.js'), ...argv]
  cases.push({ label: `${name} (bundle)`, root: ROOT, args: bin(ROOT) })
  cases.push({ label: `${name} (tsx)`, root: ROOT, args: bin(ROOT), env: { SOVRA_CLI_TSX: '1' } })
  if (COMPARE !== undefined) cases.push({ label: `${name} (compare)`, root: COMPARE, args: bin(COMPARE) })
}
// The build alone: what the first call after a source edit adds (the result is discarded: the bundle exists).
cases.push({
  label: 'build the bundle',
  root: ROOT,
  args: [
    '--input-type=module',
    '-e',
    `const m = await import(${JSON.stringify(join(ROOT, 'bin', 'cli-bundle.js'))}); await m.buildBundle(m.ROOT)`,
  ],
})

// Build or reuse the bundle first, so the first measured call does not include it.
once({ label: 'warm-up', root: ROOT, args: [join(ROOT, 'bin', 'sovra.js'), '--help'] })
const times = new Map<string, { wall: number[]; cpu: number[] }>(cases.map((c) => [c.label, { wall: [], cpu: [] }]))
// Interleaved rounds: a busy spell on a shared machine slows every case a little, not one case a lot.
for (let round = 0; round < RUNS; round++) {
  for (const c of cases) {
    const t = once(c)
    times.get(c.label)?.wall.push(t.wall)
    times.get(c.label)?.cpu.push(t.cpu)
  }
}
rmSync(join(TIMES, '..'), { recursive: true, force: true })

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2
}
const results = Object.fromEntries(
  [...times].map(([label, t]) => [
    label,
    {
      median_ms: Math.round(median(t.wall)),
      cpu_median_ms: Math.round(median(t.cpu)),
      runs_ms: t.wall.map(Math.round),
      cpu_runs_ms: t.cpu.map(Math.round),
    },
  ]),
)
const machine = `${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, node ${process.version}`
const load = loadavg()
  .map((l) => l.toFixed(1))
  .join(' ')
console.log(`Machine: ${machine}; load ${load}; ${new Date().toISOString()}; ${RUNS} runs each\n`)
console.log('| case | median ms | min-max ms | CPU median ms (user+sys) |\n|---|---|---|---|')
for (const [label, r] of Object.entries(results))
  console.log(
    `| ${label} | ${r.median_ms} | ${Math.min(...r.runs_ms)}-${Math.max(...r.runs_ms)} | ${r.cpu_median_ms} |`,
  )
mkdirSync(join(HERE, 'results'), { recursive: true })
writeFileSync(
  join(HERE, 'results', 'cli-start.json'),
  `${JSON.stringify({ date: new Date().toISOString(), machine, loadavg: loadavg(), runs: RUNS, compare: COMPARE ?? null, results }, null, 2)}\n`,
)
