import { loadConfig } from '../config/load.ts'
import type { Project } from '../config/resolve.ts'
import { SovraError } from '../core/errors.ts'
import { loadKey } from '../../infra/registry/keys.ts'
import type { Envelope } from '../../infra/registry/dsse.ts'
import { signApproval, type ApprovalSubject } from '../../infra/deploy/approvals.ts'
import { currentActor, keysDir, loadTrust } from '../../infra/deploy/project-state.ts'
import { describeChange, withControlPlane } from '../../infra/deploy/versions.ts'
import type { Change } from '../../infra/deploy/control-plane.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Command, Io } from './command.ts'
import { forwardToHost } from './remote.ts'

const APPROVE_USAGE = 'sovra approve <change-id> --key NAME [--url URL]'
const APPROVE_OPTIONS = {
  ...COMMON_OPTIONS,
  key: { type: 'string', short: 'k' },
  url: { type: 'string' },
  /** The signed statement (base64 of the DSSE envelope), as the CLI sends it to the host that holds the state. */
  signature: { type: 'string' },
} as const

const LIST_USAGE = 'sovra approvals [--json] [--change ID] [--url URL]'
const LIST_OPTIONS = {
  ...COMMON_OPTIONS,
  json: { type: 'boolean' },
  change: { type: 'string' },
  url: { type: 'string' },
} as const

/**
 * `sovra approve <change-id> --key NAME`: signs a statement over the change and its version's digests with the
 * approver's own key and submits it; the control plane checks it against the trust list (`approve` kind) and
 * takes the key's name as the approver. Without `--key` the approval is only as good as the caller: a verified
 * token on a host with `[auth]`, else a claimed name, which no change above low risk accepts. Runs at the host that
 * holds the state when one runs (the statement is signed here, where the key is).
 */
export const approveCommand: Command = {
  usage: APPROVE_USAGE,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, APPROVE_OPTIONS, APPROVE_USAGE, 1)
    const id = positionals[0]
    if (values.help === true || id === undefined) return (io.out(APPROVE_USAGE), id === undefined ? 2 : 0)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const where = { project, state: values.state, url: values.url }
    let signature = values.signature
    if (signature === undefined && values.key !== undefined) {
      const key = loadKey(keysDir(project), values.key)
      const subject = await changeSubject(id, io, where)
      signature = Buffer.from(JSON.stringify(signApproval(subject, key))).toString('base64')
    }
    const forwarded = await forwardToHost(
      'approve',
      [id, ...(signature === undefined ? [] : ['--signature', signature])],
      io,
      where,
    )
    if (forwarded !== undefined) return forwarded
    return withControlPlane(project, values.state, async (cp) => {
      const c =
        signature === undefined
          ? await cp.approve(id, currentActor())
          : await cp.approveSigned(id, parseEnvelope(signature), loadTrust(project))
      const by = c.approvers.at(-1) ?? currentActor().name
      io.out(`${id}: approved by ${by} (${c.approvers.length}/${c.required}) -> ${describeChange(c)}`)
      return 0
    })
  },
}

/**
 * `sovra approvals`: the changes waiting for approval across functions (what to approve, how many approvals each
 * still needs, who asked); `--change ID --json` prints one change with its version's digests (what an approval
 * signs).
 */
export const approvalsCommand: Command = {
  usage: LIST_USAGE,
  async run(args, io) {
    const { values } = parseCommandArgs(args, LIST_OPTIONS, LIST_USAGE)
    if (values.help === true) return (io.out(LIST_USAGE), 0)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const forwarded = await forwardToHost('approvals', args, io, { project, state: values.state, url: values.url })
    if (forwarded !== undefined) return forwarded
    return withControlPlane(project, values.state, async (cp) => {
      if (values.change !== undefined) {
        const { change, ...subject } = await cp.approvalSubject(values.change)
        io.out(values.json === true ? JSON.stringify({ ...subject, status: change.status }) : describeChange(change))
        return 0
      }
      const pending = await cp.pending()
      if (values.json === true) return (io.out(JSON.stringify(pending)), 0)
      if (pending.length === 0) return (io.out('no changes are waiting for approval'), 0)
      for (const c of pending) io.out(describePending(c))
      return 0
    })
  },
}

function describePending(c: Change): string {
  const what = c.action === 'canary' ? `canary ${c.canaryWeight ?? 0}%` : 'promote to stable'
  const by = c.approvers.length === 0 ? '' : `; approved by ${c.approvers.join(', ')}`
  return `${c.id}  ${c.function}  ${what} -> ${c.version} (${c.target})  risk ${c.risk}: ${c.approvers.length}/${c.required} approvals${by}; asked by ${c.author}`
}

/** The change and its digests, from the host that holds the state or from the state itself. */
async function changeSubject(
  id: string,
  io: Io,
  where: { project: Project; state: string | undefined; url?: string | undefined },
): Promise<ApprovalSubject> {
  const lines: string[] = []
  const capture: Io = { out: (s) => void lines.push(s), err: (s) => io.err(s) }
  const forwarded = await forwardToHost('approvals', ['--change', id, '--json'], capture, where)
  if (forwarded === undefined)
    return withControlPlane(where.project, where.state, async (cp) => {
      const { change: _change, ...subject } = await cp.approvalSubject(id)
      return subject
    })
  if (forwarded !== 0 || lines.length === 0)
    throw new SovraError('ERR_NOT_FOUND', `the host could not describe change ${JSON.stringify(id)}`)
  return JSON.parse(lines.join('\n')) as ApprovalSubject
}

function parseEnvelope(b64: string): Envelope {
  try {
    const e = JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as Envelope
    if (typeof e.payload === 'string' && Array.isArray(e.signatures)) return e
  } catch {
    // reported below
  }
  throw new SovraError(
    'ERR_USAGE',
    `--signature: expected the base64 of a DSSE envelope (what sovra approve --key makes), received ${JSON.stringify(b64.slice(0, 40))}${b64.length > 40 ? '...' : ''}`,
  )
}
