import { loadConfig } from '../config/load.ts'
import { auditLog } from '../../infra/deploy/audit.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Command } from './command.ts'
import { openStore } from '../../infra/deploy/project-state.ts'

const USAGE = 'sovra audit [--since ISO-TIME] [--limit N] [--json] | sovra audit verify'

/** `sovra audit`: prints the audit log; `sovra audit verify` recomputes the hash chain (exit 1 names the first break). */
export const auditCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const verify = args[0] === 'verify'
    const { values } = parseCommandArgs(
      verify ? args.slice(1) : args,
      { ...COMMON_OPTIONS, since: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
      USAGE,
    )
    if (values.help === true) return (io.out(USAGE), 0)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const db = await openStore(project, values.state === undefined ? {} : { state: values.state })
    try {
      const log = auditLog(db)
      if (verify) {
        const r = await log.verify()
        if (r.ok) return (io.out(`yes: the audit chain is intact (${r.entries} entries)`), 0)
        io.out(`no: first broken entry ${r.brokenId}: ${r.reason}`)
        return 1
      }
      const entries = await log.list({
        ...(values.since === undefined ? {} : { since: values.since }),
        limit: values.limit === undefined ? 1000 : Number(values.limit),
      })
      if (values.json === true) return (io.out(JSON.stringify(entries, null, 2)), 0)
      for (const e of entries) {
        io.out(
          `${String(e.id).padStart(5)}  ${e.at}  ${e.actor.padEnd(12)} ${e.action.padEnd(18)} ${e.subject}${e.before ? `  before=${e.before}` : ''}${e.after ? `  after=${e.after}` : ''}${e.reason ? `  reason=${JSON.stringify(e.reason)}` : ''}`,
        )
      }
      return 0
    } finally {
      await db.close()
    }
  },
}
