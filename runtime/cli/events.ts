import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import type { QueuedEvent } from '../../triggers/object/queue.ts'
import { callHost, findHost } from './admin.ts'
import { openLocalState } from '../../infra/deploy/local-state.ts'
import { COMMON_OPTIONS, parseChoice, parseCommandArgs, parseIntFlag, parseUrlFlag } from './args.ts'
import type { Command } from './command.ts'

const USAGE =
  'sovra events [--dead | --status pending|running|done|dead] [--limit N] | sovra events replay <id...|--all-dead>  [--url URL] [--state DIR]'
const OPTIONS = {
  ...COMMON_OPTIONS,
  dead: { type: 'boolean' },
  status: { type: 'string' },
  limit: { type: 'string' },
  'all-dead': { type: 'boolean' },
  url: { type: 'string' },
} as const
/** The statuses `--status` lists (as the admin API's `GET /_sovra/events`; staged events are not listed). */
const STATUSES = ['pending', 'running', 'done', 'dead'] as const
/** The most events one listing returns. */
const MAX_LIMIT = 100_000

/** `sovra events`: the object-event queue (what failed, why, how often), and replay of dead letters. */
export const eventsCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const replay = args[0] === 'replay'
    const { values, positionals } = parseCommandArgs(replay ? args.slice(1) : args, OPTIONS, USAGE, replay ? 1000 : 0)
    if (values.help) return (io.out(USAGE), 0)
    // Flags are checked before the config and the state are opened: a bad value is a usage error, not a SQL one.
    if (values.dead === true && values.status !== undefined && values.status !== 'dead')
      throw new SovraError(
        'ERR_USAGE',
        `--dead and --status ${JSON.stringify(values.status)} contradict each other; give one\nusage: ${USAGE}`,
      )
    const status = values.dead === true ? 'dead' : parseChoice(values.status, '--status', [...STATUSES, 'all'], 'all')
    const limit = parseIntFlag(values.limit, '--limit', { min: 1, max: MAX_LIMIT }, 100)
    if (values.url !== undefined) parseUrlFlag(values.url, '--url')
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const host = await findHost(values.url, project, values.state)
    if (replay) {
      const ids = positionals.map((p) => {
        const n = Number(p)
        if (!Number.isInteger(n) || n <= 0)
          throw new SovraError('ERR_USAGE', `event ids are positive integers, received ${JSON.stringify(p)}`)
        return n
      })
      if (ids.length === 0 && values['all-dead'] !== true)
        throw new SovraError('ERR_USAGE', `replay needs event ids or --all-dead\nusage: ${USAGE}`)
      const body = values['all-dead'] === true ? { all_dead: true } : { ids }
      const res = await callHost(host, '/_sovra/events/replay', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      let replayed: number
      if (res !== undefined) {
        if (!res.ok) return (io.err(`replay failed: ${res.status} ${await res.text()}`), 1)
        replayed = ((await res.json()) as { replayed: number }).replayed
      } else {
        const state = await openLocalState(project, values.state)
        try {
          if (state.queue === undefined)
            throw new SovraError('ERR_USAGE', 'no function has object_triggers; there is no event queue')
          replayed = await state.queue.replay(values['all-dead'] === true ? 'all-dead' : ids)
        } finally {
          await state.close()
        }
      }
      io.out(
        `replayed ${replayed} dead event${replayed === 1 ? '' : 's'}${res === undefined ? ' (they run when a host starts)' : ''}`,
      )
      return 0
    }
    const res = await callHost(host, `/_sovra/events?limit=${limit}${status === 'all' ? '' : `&status=${status}`}`)
    let events: QueuedEvent[]
    if (res !== undefined) {
      if (!res.ok) return (io.err(`${res.status}: ${await res.text()}`), 1)
      events = (await res.json()) as QueuedEvent[]
    } else {
      const state = await openLocalState(project, values.state)
      try {
        events =
          state.queue === undefined
            ? []
            : await state.queue.list({
                ...(status === 'all' ? {} : { status }),
                limit,
              })
      } finally {
        await state.close()
      }
    }
    for (const e of events) {
      io.out(
        `${String(e.id).padStart(6)}  ${e.status.padEnd(7)}  ${e.function}  ${e.event.type} ${e.event.bucket}/${e.event.key}  attempts=${e.attempts}${e.lastError === undefined ? '' : `  error: ${e.lastError}`}`,
      )
    }
    if (events.length === 0) io.out(`no events${status === 'all' ? '' : ` with status ${status}`}`)
    return 0
  },
}
