import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import type { QueuedEvent } from '../../triggers/object/queue.ts'
import { adminUrl, callHost } from './admin.ts'
import { openLocalState } from '../../infra/deploy/local-state.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Command } from './command.ts'

const USAGE =
  'sovra events [--dead | --status S] [--limit N] | sovra events replay <id...|--all-dead>  [--url URL] [--state DIR]'
const OPTIONS = {
  ...COMMON_OPTIONS,
  dead: { type: 'boolean' },
  status: { type: 'string' },
  limit: { type: 'string' },
  'all-dead': { type: 'boolean' },
  url: { type: 'string' },
} as const

/** `sovra events`: the object-event queue (what failed, why, how often), and replay of dead letters. */
export const eventsCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const replay = args[0] === 'replay'
    const { values, positionals } = parseCommandArgs(replay ? args.slice(1) : args, OPTIONS, USAGE, replay ? 1000 : 0)
    if (values.help) return (io.out(USAGE), 0)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const url = await adminUrl(values.url, project, values.state)
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
      const res = await callHost(url, '/_sovra/events/replay', {
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
    const status = values.dead === true ? 'dead' : values.status
    const limit = values.limit === undefined ? 100 : Number(values.limit)
    const res = await callHost(
      url,
      `/_sovra/events?limit=${limit}${status === undefined ? '' : `&status=${encodeURIComponent(status)}`}`,
    )
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
                ...(status === undefined ? {} : { status: status as QueuedEvent['status'] }),
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
    if (events.length === 0) io.out(`no events${status === undefined ? '' : ` with status ${status}`}`)
    return 0
  },
}
