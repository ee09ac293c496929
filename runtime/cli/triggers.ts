import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { parseSchedule } from '../../triggers/cron/schedule.ts'
import { FunctionSet } from '../hosts/local/functions.ts'
import { DEFAULT_PORT } from '../hosts/local/host.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Command } from './command.ts'
import { createBucketProvider } from './storage.ts'

const LIST_USAGE = 'sovra triggers [--config FILE] [--env NAME]'
const FIRE_USAGE = 'sovra trigger cron <fn> [--cron EXPR] [--url http://127.0.0.1:8787] [--config FILE] [--env NAME]'

/** `sovra triggers`: every function's routes and crons, with the next 5 run times of each cron. */
export const triggersCommand: Command = {
  usage: LIST_USAGE,
  async run(args, io) {
    const { values } = parseCommandArgs(args, COMMON_OPTIONS, LIST_USAGE)
    if (values.help) return io.out(LIST_USAGE), 0
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const now = Date.now()
    for (const fn of project.functions) {
      io.out(`${fn.name}`)
      if (fn.routes.length > 0) io.out(`  http    ${fn.routes.join(', ')}`)
      for (const cron of fn.crons) {
        const s = parseSchedule({ function: fn.name, cron, timezone: fn.timezone, startDate: fn.startDate, stopDate: fn.stopDate })
        io.out(`  cron    ${cron}  (${fn.timezone ?? 'UTC'})  next: ${s.upcoming(5, now).map((t) => new Date(t).toISOString()).join(', ') || 'none (past stop_date)'}`)
      }
      for (const t of fn.worker.object_triggers ?? []) io.out(`  object  ${JSON.stringify(t)}`)
    }
    return 0
  },
}

/**
 * `sovra trigger cron <fn>`: fires a cron now through the running host's admin API (so the run is recorded and
 * respects overlap), or, when no host answers, runs the scheduled handler once in an isolate here.
 */
export const triggerCommand: Command = {
  usage: FIRE_USAGE,
  async run(args, io) {
    const [kind, ...rest] = args
    if (kind !== 'cron') throw new SovraError('ERR_USAGE', `unknown trigger kind ${JSON.stringify(kind ?? '')}; valid: cron\nusage: ${FIRE_USAGE}`)
    const { values, positionals } = parseCommandArgs(rest, { ...COMMON_OPTIONS, cron: { type: 'string' }, url: { type: 'string' } }, FIRE_USAGE, 1)
    if (values.help) return io.out(FIRE_USAGE), 0
    const name = positionals[0]
    if (name === undefined) throw new SovraError('ERR_USAGE', `missing the function name\nusage: ${FIRE_USAGE}`)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const fn = project.functions.find((f) => f.name === name)
    if (fn === undefined) throw new SovraError('ERR_USAGE', `unknown function ${JSON.stringify(name)}; functions: ${project.functions.map((f) => f.name).join(', ')}`)
    const cron = values.cron ?? fn.crons[0]
    if (cron === undefined || (values.cron !== undefined && !fn.crons.includes(values.cron))) {
      throw new SovraError('ERR_USAGE', `function "${name}" has ${fn.crons.length === 0 ? 'no crons' : `crons ${fn.crons.map((c) => JSON.stringify(c)).join(', ')}`}${values.cron === undefined ? '' : `, not ${JSON.stringify(values.cron)}`}`)
    }
    const url = values.url ?? `http://127.0.0.1:${DEFAULT_PORT}`
    let res: Response | undefined
    try {
      res = await fetch(`${url}/_sovra/triggers/cron/${encodeURIComponent(name)}?cron=${encodeURIComponent(cron)}`, { method: 'POST' })
    } catch {
      res = undefined
    }
    if (res !== undefined) {
      const run = (await res.json()) as { status?: string; attempts?: number; error?: string }
      io.out(`cron ${name} via ${url}: ${run.status ?? 'unknown'}${run.attempts === undefined ? '' : ` after ${run.attempts} attempt(s)`}${run.error === undefined ? '' : ` (${run.error})`}`)
      return res.ok ? 0 : 1
    }
    io.err(`no host answers at ${url}; running the scheduled handler once here (not recorded)`)
    const set = await FunctionSet.load(project, { only: [name], isolates: { min: 1, max: 1 }, buckets: createBucketProvider(project) })
    try {
      const r = await (set.get(name) as NonNullable<ReturnType<FunctionSet['get']>>).pool.run('scheduled', { cron, scheduledTime: Date.now() }, { trigger: 'invoke' })
      io.out(`cron ${name}: ${r.ok ? 'ok' : `failed (${r.error?.message ?? 'unknown error'})`}`)
      return r.ok ? 0 : 1
    } finally {
      await set.close(1000)
    }
  },
}
