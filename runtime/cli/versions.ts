import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { withStore } from '../../infra/deploy/project-state.ts'
import { versionHistory, type VersionHistoryEntry } from '../../infra/deploy/version-history.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Command } from './command.ts'
import { forwardToHost } from './remote.ts'

const USAGE = 'sovra versions <fn> [--json] [--url URL]'
const OPTIONS = {
  ...COMMON_OPTIONS,
  json: { type: 'boolean' },
  url: { type: 'string' },
} as const

/**
 * `sovra versions <fn>`: a function's recorded versions, newest first: where each stands (stable, canary N%,
 * previous, pinned for attr=value, pending approval, or none), its bundle and config digests, who deployed it and
 * when, and who approved it and how. `--json` prints the list as {@link VersionHistoryEntry} objects. Runs at the
 * host that holds the state when one runs.
 */
export const versionsCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, OPTIONS, USAGE, 1)
    const fn = positionals[0]
    if (values.help === true || fn === undefined) return (io.out(USAGE), fn === undefined ? 2 : 0)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const forwarded = await forwardToHost('versions', args, io, { project, state: values.state, url: values.url })
    if (forwarded !== undefined) return forwarded
    const history = await withStore(project, values.state, (db) => versionHistory(db).versions(fn))
    // A function taken out of the config keeps its history; a name that is neither is a typo.
    if (history.length === 0 && !project.functions.some((f) => f.name === fn))
      throw new SovraError(
        'ERR_USAGE',
        `unknown function ${JSON.stringify(fn)}: not in the config and never deployed; functions: ${project.functions.map((f) => f.name).join(', ')}`,
      )
    if (values.json === true) return (io.out(JSON.stringify(history)), 0)
    if (history.length === 0) return (io.out(`${fn}: no versions yet; deploy one with: sovra deploy ${fn}`), 0)
    for (const v of history) io.out(describeVersion(v))
    return 0
  },
}

/**
 * One version as the operator reads it: id and state, digests, who deployed it, who approved it.
 * @param v the version
 */
function describeVersion(v: VersionHistoryEntry): string {
  const approvals =
    v.approvals.length === 0
      ? 'no approvals'
      : `approved by ${v.approvals
          .map((a) => `${a.approver} (${a.verifiedBy}${a.keyId === null ? '' : ` key ${a.keyId}`}, ${a.change})`)
          .join(', ')}`
  return [
    `${v.id}  ${v.state.length === 0 ? 'none' : v.state.join(', ')}`,
    `  bundle sha256:${v.bundleSha256}`,
    `  config sha256:${v.configSha256}`,
    `  deployed by ${v.createdBy} at ${v.createdAt} (risk ${v.risk}); ${approvals}`,
  ].join('\n')
}
