import { resolve } from 'node:path'

import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { runDeploy } from '../../infra/targets/define.ts'
import { targetOf } from '../../infra/targets/registry.ts'
import { actor } from '../../infra/deploy/project-state.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Command } from './command.ts'
import { forwardToHost } from './remote.ts'

/** The arguments without one option and its value (`--out DIR`, `--out=DIR`). */
function withoutOption(args: readonly string[], name: string): string[] {
  return args.filter((a, i) => a !== name && !a.startsWith(`${name}=`) && args[i - 1] !== name)
}

const USAGE =
  'sovra deploy [fn...] [--target local|openwhisk] [--canary N] [--plan] [--key NAME] [--url URL] | openwhisk: [--prune] [--apihost URL] [--namespace NS] [--out DIR]   (auth: SOVRA_OW_AUTH=uuid:key)'
const OPTIONS = {
  ...COMMON_OPTIONS,
  key: { type: 'string' },
  canary: { type: 'string' },
  target: { type: 'string', short: 't' },
  plan: { type: 'boolean' },
  prune: { type: 'boolean' },
  apihost: { type: 'string' },
  namespace: { type: 'string' },
  out: { type: 'string' },
  url: { type: 'string' },
} as const

/**
 * Parses `--canary N` (a percentage).
 * @param value the flag's value
 */
export function parseCanary(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const weight = Number(value)
  if (!Number.isInteger(weight) || weight < 0 || weight > 100)
    throw new SovraError('ERR_USAGE', `--canary: expected a percentage 0-100, received ${JSON.stringify(value)}`)
  return weight
}

/**
 * `sovra deploy [fn...] --target <name>`: builds, signs and verifies the functions for the target, prints the plan
 * and applies it (`--plan` stops after printing). The target is a lookup (infra/targets); the work is its own.
 */
export const deployCommand: Command = {
  usage: USAGE,
  async run(args, io, env: Record<string, string | undefined> = process.env) {
    const { values, positionals } = parseCommandArgs(args, OPTIONS, USAGE, 1000)
    if (values.help) return (io.out(USAGE), 0)
    const target = targetOf(values.target)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const unknown = positionals.filter((p) => !project.functions.some((f) => f.name === p))
    if (unknown.length > 0)
      throw new SovraError(
        'ERR_USAGE',
        `unknown function ${unknown.map((u) => JSON.stringify(u)).join(', ')}; functions: ${project.functions.map((f) => f.name).join(', ')}`,
      )
    // A host on this state runs the deploy (it holds the store; the canary routes without a restart).
    const forwarded = await forwardToHost(
      'deploy',
      values.out === undefined ? args : [...withoutOption(args, '--out'), '--out', resolve(values.out)],
      io,
      { project, state: values.state, url: values.url },
    )
    if (forwarded !== undefined) return forwarded
    const functions = project.functions.filter((f) => positionals.length === 0 || positionals.includes(f.name))
    const ctx = {
      project,
      state: values.state,
      env,
      actor: actor(),
      flags: { apihost: values.apihost, namespace: values.namespace },
      say: (line: string) => io.out(line),
    }
    const req = {
      functions,
      canary: parseCanary(values.canary),
      key: values.key,
      prune: values.prune === true,
      out: values.out,
      planOnly: values.plan === true,
    }
    await runDeploy(target, ctx, req)
    return 0
  },
}
