import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { auditLog, type AuditVerification } from '../../infra/deploy/audit.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import { forwardToHost } from './remote.ts'
import type { Command } from './command.ts'
import { openStore } from '../../infra/deploy/project-state.ts'

const USAGE = `sovra audit [--since TIME] [--limit N] [--json]
       sovra audit verify [--json]
       sovra audit checkpoint
TIME: an ISO 8601 date or date-time (2026-11-01, 2026-11-01T09:30, 2026-11-01T09:30:00+01:00; UTC without an offset), or an age (30m, 24h, 7d)`
const SUBCOMMANDS = ['verify', 'checkpoint']
const MAX_LIMIT = 100_000
const AGE = /^(\d{1,6})([mhd])$/
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$/

/**
 * Parses `--since`: an ISO 8601 date or date-time (UTC when it names no offset) or an age (`30m`, `24h`, `7d`);
 * ERR_USAGE naming the value and the accepted forms otherwise (before, PostgreSQL's error came through).
 * @param value the flag's value
 * @param now the current time, for ages
 */
export function parseSince(value: string, now = Date.now()): string {
  const age = AGE.exec(value)
  if (age !== null) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 'm' | 'h' | 'd']
    return new Date(now - Number(age[1]) * unit).toISOString()
  }
  const m = ISO.exec(value)
  if (m !== null) {
    const [y, mo, d, h = '00', mi = '00', s = '00'] = m.slice(1, 7) as string[]
    const zoned =
      m[4] === undefined
        ? `${value}T00:00:00Z`
        : m[7] === undefined
          ? `${value.replace(' ', 'T')}Z`
          : value.replace(' ', 'T')
    const t = new Date(zoned)
    // Date accepts 2026-02-30 (as March 2): the fields must come back as written.
    const utc = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)))
    if (
      !Number.isNaN(t.getTime()) &&
      utc.getUTCFullYear() === Number(y) &&
      utc.getUTCMonth() === Number(mo) - 1 &&
      utc.getUTCDate() === Number(d) &&
      utc.getUTCHours() === Number(h) &&
      utc.getUTCMinutes() === Number(mi) &&
      utc.getUTCSeconds() === Number(s)
    )
      return t.toISOString()
  }
  throw new SovraError(
    'ERR_USAGE',
    `--since: expected an ISO 8601 date or date-time (2026-11-01, 2026-11-01T09:30, 2026-11-01T09:30:00Z, 2026-11-01T09:30:00+01:00) or an age (30m, 24h, 7d), received ${JSON.stringify(value)}`,
  )
}

/**
 * Parses `--limit`: a whole number of entries, 1 to 100000.
 * @param value the flag's value
 */
export function parseLimit(value: string | undefined): number {
  if (value === undefined) return 1000
  const n = Number(value)
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_LIMIT)
    throw new SovraError(
      'ERR_USAGE',
      `--limit: expected a whole number of entries from 1 to ${MAX_LIMIT}, received ${JSON.stringify(value)}`,
    )
  return n
}

function report(r: AuditVerification): string[] {
  if (!r.ok) {
    const [first, ...rest] = r.problems
    return [`no: ${first ?? r.reason}`, ...rest.map((p) => `  also: ${p}`)]
  }
  const head = `yes: the audit chain is intact (${r.entries} entries)`
  if (r.latest === undefined)
    return [
      `${head}; no signed checkpoint anchors it yet, so deleted newest entries or a re-hashed chain would not show (sovra audit checkpoint signs its head)`,
    ]
  const newer = r.entries - r.latest.entries
  return [
    `${head}; ${r.checkpoints} signed checkpoint${r.checkpoints === 1 ? '' : 's'} agree, the latest covers ${r.latest.entries} entries (signed at ${r.latest.at} by ${r.latest.signer}, ${r.latest.keyid})${newer > 0 ? `; the ${newer} newer entr${newer === 1 ? 'y is' : 'ies are'} not yet anchored` : ''}`,
  ]
}

/**
 * `sovra audit`: prints the audit log; `sovra audit verify` recomputes the hash chain and checks it against the signed
 * checkpoints of its head (exit 1 names every problem); `sovra audit checkpoint` signs the head of a verified chain.
 */
export const auditCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const sub = args[0] !== undefined && !args[0].startsWith('-') ? args[0] : undefined
    if (sub !== undefined && !SUBCOMMANDS.includes(sub))
      throw new SovraError(
        'ERR_USAGE',
        `unknown subcommand ${JSON.stringify(sub)}; valid: ${SUBCOMMANDS.join(', ')} (or none, to list entries)\nusage: ${USAGE}`,
      )
    const { values } = parseCommandArgs(
      sub === undefined ? args : args.slice(1),
      {
        ...COMMON_OPTIONS,
        since: { type: 'string' },
        limit: { type: 'string' },
        json: { type: 'boolean' },
        url: { type: 'string' },
      },
      USAGE,
    )
    if (values.help === true) return (io.out(USAGE), 0)
    if (sub !== undefined) {
      const stray = (['since', 'limit', 'json'] as const).filter(
        (k) => values[k] !== undefined && (k !== 'json' || sub === 'checkpoint'),
      )
      if (stray.length > 0)
        throw new SovraError(
          'ERR_USAGE',
          `sovra audit ${sub} takes no ${stray.map((k) => `--${k}`).join(', ')}: it covers the whole chain\nusage: ${USAGE}`,
        )
    }
    // Checked before the store opens: a bad value is the caller's, not a database error.
    const since = values.since === undefined ? undefined : parseSince(values.since)
    const limit = parseLimit(values.limit)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    // A host on this state reads (and checkpoints) the chain it holds.
    const forwarded = await forwardToHost('audit', args, io, { project, state: values.state, url: values.url })
    if (forwarded !== undefined) return forwarded
    const db = await openStore(project, values.state === undefined ? {} : { state: values.state })
    try {
      const log = auditLog(db)
      if (sub !== undefined) {
        const r = await log.verify()
        if (sub === 'verify' && values.json === true) return (io.out(JSON.stringify(r, null, 2)), r.ok ? 0 : 1)
        if (sub === 'verify' || !r.ok) {
          for (const line of report(r)) io.out(line)
          if (sub === 'checkpoint') io.err('refused: a checkpoint would vouch for a chain that does not verify')
          return r.ok ? 0 : 1
        }
        const c = await log.checkpoint()
        io.out(
          `signed: the checkpoint of entry ${c.entries} (id ${c.headId}, hash ${c.headHash}) by ${c.signer} (${c.keyid}), stored as ${c.object}`,
        )
        io.out(
          `public key (pin it with [[trust]] kinds = ["audit"] where this chain is verified): ${c.publicKey ?? ''}`,
        )
        return 0
      }
      const entries = await log.list({ ...(since === undefined ? {} : { since }), limit })
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
