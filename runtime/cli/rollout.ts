import { createHash } from 'node:crypto'
import { relative } from 'node:path'

import { loadConfig } from '../config/load.ts'
import type { Project } from '../config/resolve.ts'
import type { FunctionConfig } from '../config/schema.ts'
import { SovraError } from '../core/errors.ts'
import { bundleFunction } from '../isolate/bundle.ts'
import { buildDir } from '../hosts/local/functions.ts'
import { controlPlane, type Change, type ControlPlane } from '../../infra/deploy/control-plane.ts'
import { loadKey } from '../../infra/registry/keys.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Io } from './command.ts'
import { actor, audit, keysDir, loadTrust, openRegistry } from './registry.ts'
import { owClient } from '../../infra/openwhisk/deploy.ts'
import { changeRouting } from '../../infra/openwhisk/rollout.ts'
import { owTarget, requireCluster } from './openwhisk-target.ts'
import { openStore } from './store.ts'

/**
 * The digest of a function's resolved config as deployed: everything that changes its behaviour except the code
 * (paths relative to the project, so the digest is the same on every machine).
 * @param project the project
 * @param fn the function
 */
export function configDigest(project: Project, fn: FunctionConfig): string {
  const { worker: _w, main, ...rest } = fn
  return createHash('sha256').update(JSON.stringify({ ...rest, main: relative(project.dir, main) })).digest('hex')
}

/**
 * Runs `fn` with the control plane on the project's SQL store.
 * @param project the project
 * @param state the state folder override
 * @param fn what to do
 */
export async function withControlPlane<T>(project: Project, state: string | undefined, fn: (cp: ControlPlane) => Promise<T>): Promise<T> {
  const db = await openStore(project, state === undefined ? {} : { state })
  try {
    return await fn(controlPlane(db))
  } finally {
    await db.close()
  }
}

function describeChange(c: Change): string {
  if (c.status === 'applied') return c.action === 'canary' ? `canary ${c.canaryWeight ?? 0}%` : 'stable'
  return `pending approval ${c.id} (risk ${c.risk}: ${c.required} approval${c.required === 1 ? '' : 's'} from others than ${c.author}; sovra approve ${c.id})`
}

/**
 * `sovra deploy [fn...] [--canary N]` on the embedded target: bundles each function, pushes the bundle to the signed
 * registry (kind bundle) and verifies it against the trust policy (unsigned, untrusted or tampered: ERR_SIGNATURE),
 * records the immutable version, and asks for it to become stable (or the canary at N%), subject to approvals.
 * @param args command arguments
 * @param io output
 */
export async function deployLocal(args: string[], io: Io): Promise<number> {
  const usage = 'sovra deploy [fn...] [--target local] [--canary N] [--key NAME]'
  const { values, positionals } = parseCommandArgs(args, { ...COMMON_OPTIONS, target: { type: 'string' }, canary: { type: 'string' }, key: { type: 'string' } }, usage, 1000)
  if (values.help === true) return io.out(usage), 0
  const { project } = loadConfig({ configPath: values.config, env: values.env })
  const weight = values.canary === undefined ? undefined : Number(values.canary)
  if (weight !== undefined && (!Number.isInteger(weight) || weight < 0 || weight > 100)) throw new SovraError('ERR_USAGE', `--canary: expected a percentage 0-100, received ${JSON.stringify(values.canary)}`)
  const unknown = positionals.filter((p) => !project.functions.some((f) => f.name === p))
  if (unknown.length > 0) throw new SovraError('ERR_USAGE', `unknown function ${unknown.join(', ')}; functions: ${project.functions.map((f) => f.name).join(', ')}`)
  const fns = project.functions.filter((f) => positionals.length === 0 || positionals.includes(f.name))
  const registry = openRegistry(project, values.state)
  const trust = loadTrust(project)
  const key = loadKey(keysDir(project), values.key ?? 'default')
  return withControlPlane(project, values.state, async (cp) => {
    for (const fn of fns) {
      const bundle = await bundleFunction(fn, buildDir(project))
      const ref = `registry:${fn.name}@sha256:${bundle.sha256}`
      await registry.push(bundle.path, { kind: 'bundle', name: fn.name, version: bundle.version, createdBy: actor() }, key).catch((e: unknown) => {
        if (!(e instanceof Error) || !/already exists/.test(e.message)) throw e
      })
      const verified = await registry.verify(ref, 'bundle', trust)
      const version = await cp.recordVersion({ function: fn.name, bundleSha256: bundle.sha256, configSha256: configDigest(project, fn), manifest: verified.manifest, risk: fn.risk, createdBy: actor() })
      const current = await cp.routing(fn.name)
      if (current?.stable === version.id && weight === undefined) {
        io.out(`${fn.name}: ${version.id} is already stable`)
        continue
      }
      const change = await cp.requestChange({ function: fn.name, version: version.id, action: weight === undefined ? 'promote' : 'canary', ...(weight === undefined ? {} : { weight }), risk: fn.risk, author: actor() })
      io.out(`${fn.name}: ${version.id} (bundle sha256:${bundle.sha256.slice(0, 12)}..., signed by ${verified.signer}) -> ${describeChange(change)}`)
    }
    return 0
  })
}

const USAGE = `sovra rollout status <fn> | promote <fn> [--eval-run ID] | rollback <fn> [--reason R] | pin <fn> <version> --for attr=value | unpin <fn> --for attr=value`

/** `sovra rollout`: a function's stable, canary, pins and pending changes; promote, instant rollback, pins. */
export const rolloutCommand = {
  usage: USAGE,
  async run(args: string[], io: Io): Promise<number> {
    const [sub, ...rest] = args
    const { values, positionals } = parseCommandArgs(rest, { ...COMMON_OPTIONS, reason: { type: 'string' }, for: { type: 'string' }, 'eval-run': { type: 'string' }, target: { type: 'string' }, apihost: { type: 'string' }, namespace: { type: 'string' } }, USAGE, sub === 'pin' ? 2 : 1)
    const [fn, version] = positionals
    if (values.help === true || sub === undefined || fn === undefined) return io.out(USAGE), sub === undefined ? 2 : 0
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const config = project.functions.find((f) => f.name === fn)
    if (config === undefined) throw new SovraError('ERR_USAGE', `unknown function ${JSON.stringify(fn)}; functions: ${project.functions.map((f) => f.name).join(', ')}`)
    const forAttr = (): [string, string] => {
      const m = /^([A-Za-z0-9_.:-]+)=(.+)$/.exec(values.for ?? '')
      if (m === null) throw new SovraError('ERR_USAGE', `--for: expected attribute=value (e.g. tenant=legal), received ${JSON.stringify(values.for ?? '')}`)
      return [m[1] as string, m[2] as string]
    }
    if (values.target === 'openwhisk') {
      if (sub !== 'promote' && sub !== 'rollback' && sub !== 'pin' && sub !== 'unpin') throw new SovraError('ERR_USAGE', `on OpenWhisk, rollout supports promote, rollback, pin and unpin; received ${JSON.stringify(sub)}`)
      // A cluster canary of a medium/high-risk function was approved when it was deployed (sovra deploy waits for
      // approvals); promoting it to stable is a further change that needs its own approvals: not supported yet.
      if (sub === 'promote' && config.risk !== 'low') throw new SovraError('ERR_APPROVAL', `function ${JSON.stringify(fn)} has risk ${config.risk}: promoting a cluster canary needs approvals, which only the embedded control plane records yet; deploy the version without --canary once approved`)
      const { apihost, auth, namespace } = requireCluster(owTarget(project, values), USAGE)
      const pinArg = sub === 'pin' || sub === 'unpin' ? (() => {
        const [attribute, value] = forAttr()
        return { attribute, value, ...(sub === 'pin' && version !== undefined ? { version } : {}) }
      })() : undefined
      const { before, after } = await changeRouting(owClient({ apihost, auth, ...(namespace === undefined ? {} : { namespace }) }), project.name, fn, sub, pinArg)
      await audit(project, values.state, { action: `${sub}.openwhisk`, subject: fn, before: before.canary?.version ?? before.stable, after: pinArg?.version ?? after.stable, ...(values.reason === undefined ? {} : { reason: values.reason }), ...(pinArg === undefined ? {} : { details: { attribute: pinArg.attribute, value: pinArg.value } }) })
      const what = sub === 'promote' ? `promoted ${after.stable} to stable` : sub === 'rollback' ? `canary ${before.canary?.version} dropped; stable ${after.stable}` : sub === 'pin' ? `${pinArg?.attribute}=${pinArg?.value} pinned to ${pinArg?.version}` : `${pinArg?.attribute}=${pinArg?.value} unpinned`
      io.out(`${fn}: ${what} on ${apihost}`)
      return 0
    }
    return withControlPlane(project, values.state, async (cp) => {
      switch (sub) {
        case 'status': {
          const r = await cp.routing(fn)
          if (r === undefined) return io.out(`${fn}: not deployed (sovra deploy ${fn})`), 0
          io.out(`${fn}: stable ${r.stable}${r.canary ? `, canary ${r.canary.version} at ${r.canary.weight}%` : ''}${r.previous ? `, previous ${r.previous}` : ''}`)
          for (const p of r.pins) io.out(`  pin ${p.attribute}=${p.value} -> ${p.version}`)
          for (const c of await cp.pending(fn)) io.out(`  pending ${c.id}: ${c.action} ${c.version} by ${c.author}, ${c.approvers.length}/${c.required} approvals`)
          return 0
        }
        case 'promote': {
          const c = await cp.promote(fn, actor(), config.risk, { required: config.worker.rollout?.require_eval === true, runId: values['eval-run'] })
          io.out(`${fn}: ${c.version} -> ${describeChange(c)}`)
          return 0
        }
        case 'rollback': {
          const r = await cp.rollback(fn, actor(), values.reason ?? 'manual rollback')
          io.out(`${fn}: rolled back from ${r.from} to ${r.to}`)
          return 0
        }
        case 'pin': {
          if (version === undefined) throw new SovraError('ERR_USAGE', `pin needs a version\nusage: ${USAGE}`)
          const [attr, value] = forAttr()
          await cp.pin(fn, attr, value, version, actor())
          io.out(`${fn}: ${attr}=${value} pinned to ${version}`)
          return 0
        }
        case 'unpin': {
          const [attr, value] = forAttr()
          await cp.unpin(fn, attr, value, actor())
          io.out(`${fn}: ${attr}=${value} unpinned`)
          return 0
        }
        default:
          throw new SovraError('ERR_USAGE', `unknown subcommand ${JSON.stringify(sub)}; valid: status, promote, rollback, pin, unpin\nusage: ${USAGE}`)
      }
    })
  },
}

/** `sovra approve <change-id>`: approves a pending change as the current actor. */
export const approveCommand = {
  usage: 'sovra approve <change-id>',
  async run(args: string[], io: Io): Promise<number> {
    const { values, positionals } = parseCommandArgs(args, COMMON_OPTIONS, 'sovra approve <change-id>', 1)
    const id = positionals[0]
    if (values.help === true || id === undefined) return io.out('sovra approve <change-id>'), id === undefined ? 2 : 0
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    return withControlPlane(project, values.state, async (cp) => {
      const c = await cp.approve(id, actor())
      io.out(`${id}: approved by ${actor()} (${c.approvers.length}/${c.required}) -> ${describeChange(c)}`)
      return 0
    })
  },
}
