import { loadConfig } from '../config/load.ts'
import type { Project } from '../config/resolve.ts'
import { businessCalendar, nextSurgeWindows } from '../../infra/pools/calendar.ts'
import type { PoolSummary } from '../../infra/pools/manager.ts'
import { callHost, findHost } from './admin.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Command } from './command.ts'

const USAGE = 'sovra pools [--url URL] [--json]'
const OPTIONS = { ...COMMON_OPTIONS, url: { type: 'string' }, json: { type: 'boolean' } } as const

const short = (iso: string): string => `${iso.slice(0, 16).replace('T', ' ')}Z`

function surgeText(s: PoolSummary['surge']): string {
  if (s.active !== null) return `${s.active.phase} until ${short(s.active.closes_at)} (min ${s.active.min_replicas})`
  const next = s.next[0]
  return next === undefined
    ? '-'
    : `${next.day}: warm ${short(next.warm_from)}, open ${short(next.opens_at)} (min ${next.min_replicas})`
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '))
}

/** What `sovra pools` shows when no host answers: the config, and the surge windows it implies. */
function fromConfig(project: Project): PoolSummary[] {
  const cal = project.config.calendar
  const calendar = businessCalendar({
    ...(cal?.weekend === undefined ? {} : { weekend: cal.weekend }),
    ...(cal?.holidays === undefined ? {} : { holidays: cal.holidays }),
  })
  const iso = (ms: number): string => new Date(ms).toISOString()
  return project.pools.map((p) => ({
    name: p.name,
    alias: p.alias,
    engine: p.engine,
    tier: p.tier,
    clearance: p.clearance,
    class: p.class,
    replicas: [],
    ready: 0,
    desired: p.minReplicas,
    reason: 'host not running',
    min_replicas: p.minReplicas,
    max_replicas: p.maxReplicas,
    queue: 0,
    outstanding: 0,
    p95_ms: null,
    p95_budget_ms: p.p95BudgetMs,
    surge: {
      active: null,
      last_check: null,
      next:
        p.surge.length === 0
          ? []
          : nextSurgeWindows(p.surge, calendar, Date.now(), 3).map((w) => ({
              day: w.day,
              warm_from: iso(w.warmFrom),
              opens_at: iso(w.opensAt),
              closes_at: iso(w.closesAt),
              min_replicas: w.minReplicas,
            })),
    },
  }))
}

/** `sovra pools`: replicas, queue depth, p95 against budget and the next surge window of every pool. */
export const poolsCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const { values } = parseCommandArgs(args, OPTIONS, USAGE)
    if (values.help) return (io.out(USAGE), 0)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const host = await findHost(values.url, project, values.state)
    const res = await callHost(host, '/_sovra/pools')
    if (res !== undefined && !res.ok) return (io.err(`${res.status}: ${await res.text()}`), 1)
    const live = res !== undefined
    const pools = live ? ((await res.json()) as PoolSummary[]) : fromConfig(project)
    if (values.json === true) return (io.out(JSON.stringify(pools, null, 2)), 0)
    if (!live) io.err(`no host answers at ${host.url}: showing the config (start one with: sovra start)`)
    if (pools.length === 0) return (io.out('no pools: add a [[pools]] table to the config'), 0)
    const rows = [['POOL', 'MODEL', 'ENGINE', 'TIER/CLASS', 'REPLICAS', 'QUEUE', 'P95/BUDGET', 'SCALER', 'SURGE']]
    for (const p of pools) {
      rows.push([
        p.name,
        p.alias,
        p.engine,
        `${p.tier}/${p.class}`,
        `${p.ready}/${p.desired} (${p.min_replicas}-${p.max_replicas})`,
        String(p.queue),
        `${p.p95_ms === null ? '-' : `${p.p95_ms} ms`}/${p.p95_budget_ms} ms${p.p95_ms !== null && p.p95_ms > p.p95_budget_ms ? ' OVER' : ''}`,
        p.reason,
        surgeText(p.surge),
      ])
    }
    for (const line of table(rows)) io.out(line)
    for (const p of pools) {
      const c = p.surge.last_check
      if (c !== null)
        io.out(
          `${p.name}: surge check for ${c.window_day} ${c.ok ? 'passed' : 'FAILED'}: p95 ${c.p95_ms} ms vs budget ${c.budget_ms} ms over ${c.requests} requests on ${c.replicas} replicas (${c.failures} failed)`,
        )
    }
    return 0
  },
}
