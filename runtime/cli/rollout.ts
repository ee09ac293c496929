import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { targetOf } from '../../infra/targets/registry.ts'
import type { RolloutRequest } from '../../infra/targets/define.ts'
import { actor } from '../../infra/deploy/project-state.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Io } from './command.ts'
import { forwardToHost } from './remote.ts'

const USAGE = `sovra rollout status <fn> | promote <fn> [--eval-run ID] | rollback <fn> [--reason R] | pin <fn> <version> --for attr=value | unpin <fn> --for attr=value   [--target local|openwhisk] [--url URL]`
const SUBCOMMANDS = ['status', 'promote', 'rollback', 'pin', 'unpin'] as const

function forAttr(value: string | undefined): [string, string] {
  const m = /^([A-Za-z0-9_.:-]+)=(.+)$/.exec(value ?? '')
  if (m === null)
    throw new SovraError(
      'ERR_USAGE',
      `--for: expected attribute=value (e.g. tenant=legal), received ${JSON.stringify(value ?? '')}`,
    )
  return [m[1] as string, m[2] as string]
}

/** `sovra rollout`: a function's stable, canary, pins and pending changes; promote, instant rollback, pins. */
export const rolloutCommand = {
  usage: USAGE,
  async run(args: string[], io: Io, env: Record<string, string | undefined> = process.env): Promise<number> {
    const [sub, ...rest] = args
    const { values, positionals } = parseCommandArgs(
      rest,
      {
        ...COMMON_OPTIONS,
        reason: { type: 'string' },
        for: { type: 'string' },
        'eval-run': { type: 'string' },
        target: { type: 'string' },
        apihost: { type: 'string' },
        namespace: { type: 'string' },
        url: { type: 'string' },
      },
      USAGE,
      sub === 'pin' ? 2 : 1,
    )
    const [fn, version] = positionals
    if (values.help === true || sub === undefined || fn === undefined) return (io.out(USAGE), sub === undefined ? 2 : 0)
    if (!(SUBCOMMANDS as readonly string[]).includes(sub))
      throw new SovraError(
        'ERR_USAGE',
        `unknown subcommand ${JSON.stringify(sub)}; valid: ${SUBCOMMANDS.join(', ')}\nusage: ${USAGE}`,
      )
    const target = targetOf(values.target)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    if (!project.functions.some((f) => f.name === fn))
      throw new SovraError(
        'ERR_USAGE',
        `unknown function ${JSON.stringify(fn)}; functions: ${project.functions.map((f) => f.name).join(', ')}`,
      )
    const forwarded = await forwardToHost('rollout', args, io, { project, state: values.state, url: values.url })
    if (forwarded !== undefined) return forwarded
    let req: RolloutRequest
    switch (sub as (typeof SUBCOMMANDS)[number]) {
      case 'status':
        req = { op: 'status', fn }
        break
      case 'promote':
        req = { op: 'promote', fn, evalRun: values['eval-run'] }
        break
      case 'rollback':
        req = { op: 'rollback', fn, reason: values.reason }
        break
      case 'pin': {
        if (version === undefined) throw new SovraError('ERR_USAGE', `pin needs a version\nusage: ${USAGE}`)
        const [attribute, value] = forAttr(values.for)
        req = { op: 'pin', fn, attribute, value, version }
        break
      }
      case 'unpin': {
        const [attribute, value] = forAttr(values.for)
        req = { op: 'unpin', fn, attribute, value }
        break
      }
    }
    const flags = { apihost: values.apihost, namespace: values.namespace }
    await target.rollout({ project, state: values.state, env, actor: actor(), flags, say: (line) => io.out(line) }, req)
    return 0
  },
}

export { approveCommand } from './approvals.ts'
