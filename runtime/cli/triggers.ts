import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { isoInZone, parseSchedule } from '../../triggers/cron/schedule.ts'
import { COMMON_OPTIONS, parseChoice, parseCommandArgs, parseUrlFlag } from './args.ts'
import type { Command } from './command.ts'
import { callHost, findHost } from './admin.ts'
import { startSingleRun } from './invoke.ts'
import { openLocalState } from '../../infra/deploy/local-state.ts'
import { syntheticEvent } from '../../triggers/object/synthetic.ts'
import { deliveriesFor } from '../../triggers/object/match.ts'
import type { Io } from './command.ts'

const LIST_USAGE = 'sovra triggers [--config FILE] [--env NAME]'
const FIRE_USAGE =
  'sovra trigger cron <fn> [--cron EXPR] | sovra trigger object <bucket>/<key> [--type created|removed]  [--url URL] [--config FILE] [--env NAME]'

/** `sovra triggers`: every function's routes and crons, with the next 5 run times of each cron. */
export const triggersCommand: Command = {
  usage: LIST_USAGE,
  async run(args, io) {
    const { values } = parseCommandArgs(args, COMMON_OPTIONS, LIST_USAGE)
    if (values.help) return (io.out(LIST_USAGE), 0)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const now = Date.now()
    for (const fn of project.functions) {
      io.out(`${fn.name}`)
      if (fn.routes.length > 0) io.out(`  http    ${fn.routes.join(', ')}`)
      for (const cron of fn.crons) {
        const s = parseSchedule({
          function: fn.name,
          cron,
          timezone: fn.timezone,
          startDate: fn.startDate,
          stopDate: fn.stopDate,
        })
        io.out(
          `  cron    ${cron}  (${fn.timezone ?? 'UTC'})  next: ${
            s
              .upcoming(5, now)
              .map((t) => isoInZone(t, fn.timezone))
              .join(', ') || 'none (past stop_date)'
          }`,
        )
      }
      for (const t of fn.objectTriggers) io.out(`  object  ${JSON.stringify(t)}`)
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
    if (kind === 'object') return triggerObject(rest, io)
    if (kind !== 'cron')
      throw new SovraError(
        'ERR_USAGE',
        `unknown trigger kind ${JSON.stringify(kind ?? '')}; valid: cron, object\nusage: ${FIRE_USAGE}`,
      )
    const { values, positionals } = parseCommandArgs(
      rest,
      { ...COMMON_OPTIONS, cron: { type: 'string' }, url: { type: 'string' } },
      FIRE_USAGE,
      1,
    )
    if (values.help) return (io.out(FIRE_USAGE), 0)
    if (values.url !== undefined) parseUrlFlag(values.url, '--url')
    const name = positionals[0]
    if (name === undefined) throw new SovraError('ERR_USAGE', `missing the function name\nusage: ${FIRE_USAGE}`)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const fn = project.functions.find((f) => f.name === name)
    if (fn === undefined)
      throw new SovraError(
        'ERR_USAGE',
        `unknown function ${JSON.stringify(name)}; functions: ${project.functions.map((f) => f.name).join(', ')}`,
      )
    const cron = values.cron ?? fn.crons[0]
    if (cron === undefined || (values.cron !== undefined && !fn.crons.includes(values.cron))) {
      throw new SovraError(
        'ERR_USAGE',
        `function "${name}" has ${fn.crons.length === 0 ? 'no crons' : `crons ${fn.crons.map((c) => JSON.stringify(c)).join(', ')}`}${values.cron === undefined ? '' : `, not ${JSON.stringify(values.cron)}`}`,
      )
    }
    const host = await findHost(values.url, project, values.state)
    const res = await callHost(
      host,
      `/_sovra/triggers/cron/${encodeURIComponent(name)}?cron=${encodeURIComponent(cron)}`,
      { method: 'POST' },
    )
    if (res !== undefined) {
      const text = await res.text()
      let run: { status?: string; attempts?: number; error?: string }
      try {
        run = JSON.parse(text) as typeof run
      } catch {
        // Not a sovra host (or a proxy's error page): show what answered instead of a JSON parse error.
        io.err(`cron ${name} via ${host.url}: ${res.status} ${text.slice(0, 200)}`)
        return 1
      }
      io.out(
        `cron ${name} via ${host.url}: ${run.status ?? 'unknown'}${run.attempts === undefined ? '' : ` after ${run.attempts} attempt(s)`}${run.error === undefined ? '' : ` (${run.error})`}`,
      )
      return res.ok ? 0 : 1
    }
    io.err(`no host answers at ${host.url}; running the scheduled handler once here (not recorded)`)
    // The same start as `sovra invoke`: buckets, and the inference pools when the function binds env.AI.
    const local = await startSingleRun(project, name, { state: values.state })
    try {
      const r = await local.pool.run('scheduled', { cron, scheduledTime: Date.now() }, { trigger: 'invoke' })
      io.out(`cron ${name}: ${r.ok ? 'ok' : `failed (${r.error?.message ?? 'unknown error'})`}`)
      return r.ok ? 0 : 1
    } finally {
      await local.close()
    }
  },
}

/** `sovra trigger object <bucket>/<key>`: queues an object event as if the store had sent it. */
async function triggerObject(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    { ...COMMON_OPTIONS, type: { type: 'string' }, url: { type: 'string' } },
    FIRE_USAGE,
    1,
  )
  if (values.help) return (io.out(FIRE_USAGE), 0)
  const type = parseChoice(values.type, '--type', ['created', 'removed'], 'created')
  if (values.url !== undefined) parseUrlFlag(values.url, '--url')
  const target = positionals[0] ?? ''
  const slash = target.indexOf('/')
  if (slash <= 0 || slash === target.length - 1)
    throw new SovraError(
      'ERR_USAGE',
      `expected <bucket>/<key>, received ${JSON.stringify(target)}\nusage: ${FIRE_USAGE}`,
    )
  const bucket = target.slice(0, slash)
  const key = target.slice(slash + 1)
  const { project } = loadConfig({ configPath: values.config, env: values.env })
  const host = await findHost(values.url, project, values.state)
  const res = await callHost(host, '/_sovra/triggers/object', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ bucket, key, type }),
  })
  if (res !== undefined) {
    if (!res.ok) return (io.err(`${res.status}: ${await res.text()}`), 1)
    const r = (await res.json()) as { matched: number; inserted: number }
    io.out(
      `object event ${type} ${bucket}/${key} via ${host.url}: matched ${r.matched} function(s), queued ${r.inserted}`,
    )
    return 0
  }
  const state = await openLocalState(project, values.state)
  try {
    if (state.queue === undefined)
      throw new SovraError('ERR_USAGE', 'no function has object_triggers; there is no event queue')
    const event = await syntheticEvent(bucket, key, type, state.buckets)
    const deliveries = deliveriesFor(
      project.functions.map((f) => ({ name: f.name, triggers: f.objectTriggers })),
      [event],
    )
    const r = await state.queue.enqueue(deliveries)
    io.out(
      `object event ${type} ${bucket}/${key}: matched ${deliveries.length} function(s), queued ${r.inserted} (they run when a host starts)`,
    )
    return 0
  } finally {
    await state.close()
  }
}
