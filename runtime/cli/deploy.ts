import { resolve } from 'node:path'

import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { BRIDGE_ACTION, buildAction, buildBridgeAction, type ActionArtifact } from '../../infra/openwhisk/build.ts'
import { applyPlan, owClient, planDeploy, readActual } from '../../infra/openwhisk/deploy.ts'
import { checkLimits, desiredState, minioCommands } from '../../infra/openwhisk/desired.ts'
import { s3SettingsFromEnv } from '../../infra/storage/s3-bucket.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Command } from './command.ts'
import { configDigest, deployLocal, withControlPlane } from './rollout.ts'
import { owTarget, requireCluster } from './openwhisk-target.ts'
import { actor, audit, keysDir, loadTrust, openRegistry } from './registry.ts'
import { loadKey } from '../../infra/registry/keys.ts'

const USAGE = 'sovra deploy [fn...] [--canary N] (local) | sovra deploy [fn...] --target openwhisk [--plan] [--prune] [--apihost URL] [--namespace NS] [--out DIR]   (auth: SOVRA_OW_AUTH=uuid:key)'
const OPTIONS = { ...COMMON_OPTIONS, key: { type: 'string' }, canary: { type: 'string' }, target: { type: 'string', short: 't' }, plan: { type: 'boolean' }, prune: { type: 'boolean' }, apihost: { type: 'string' }, namespace: { type: 'string' }, out: { type: 'string' } } as const

/**
 * `sovra deploy --target openwhisk`: builds the actions, reads what the cluster has, prints the plan (creates,
 * updates, deletes) and applies it; `--plan` stops after printing. Idempotent: a second run changes nothing.
 */
export const deployCommand: Command = {
  usage: USAGE,
  async run(args, io, env: Record<string, string | undefined> = process.env) {
    const { values, positionals } = parseCommandArgs(args, OPTIONS, USAGE, 1000)
    if (values.help) return io.out(USAGE), 0
    if (values.target === undefined || values.target === 'local') return deployLocal(args, io)
    if (values.target !== 'openwhisk') {
      throw new SovraError('ERR_USAGE', `--target: unknown target ${JSON.stringify(values.target)}; valid: local (default), openwhisk\nusage: ${USAGE}`)
    }
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const { apihost, auth, namespace: ns, aiUrl } = requireCluster(owTarget(project, values, env), USAGE)
    const unknown = positionals.filter((p) => !project.functions.some((f) => f.name === p))
    if (unknown.length > 0) throw new SovraError('ERR_USAGE', `unknown function ${unknown.map((u) => JSON.stringify(u)).join(', ')}; functions: ${project.functions.map((f) => f.name).join(', ')}`)
    const only = positionals.length > 0 ? positionals : undefined
    // Limits first: nothing is built or called when the config cannot deploy.
    checkLimits(project)
    const selected = { ...project, functions: project.functions.filter((f) => only === undefined || only.includes(f.name)) }
    const outDir = values.out === undefined ? resolve(project.dir, 'dist', 'openwhisk') : resolve(values.out)
    const artifacts = new Map<string, ActionArtifact>()
    for (const fn of selected.functions) artifacts.set(fn.name, await buildAction(fn, outDir, project.dir))
    // Deploys ship signed artifacts only: each action is pushed to the registry, signed, and verified against the
    // trust policy before anything is sent to the cluster (ERR_SIGNATURE otherwise).
    const key = loadKey(keysDir(project), values.key ?? 'default')
    const registry = openRegistry(project, values.state)
    const trust = loadTrust(project)
    for (const a of artifacts.values()) {
      await registry.push(a.path, { kind: 'bundle', name: `${a.function}.openwhisk`, version: a.sha256.slice(0, 12), createdBy: actor() }, key).catch((e: unknown) => {
        if (!(e instanceof Error) || !/already exists/.test(e.message)) throw e
      })
      await registry.verify(`registry:${a.function}.openwhisk@sha256:${a.sha256}`, 'bundle', trust)
    }
    // Approvals by risk: a medium/high-risk function reaches the cluster only once its version's change is approved.
    const risky = selected.functions.filter((f) => f.risk !== 'low')
    if (risky.length > 0 && values.plan !== true) {
      const waiting = await withControlPlane(project, values.state, async (cp) => {
        const out: string[] = []
        for (const fn of risky) {
          const a = artifacts.get(fn.name) as ActionArtifact
          const version = await cp.recordVersion({ function: fn.name, bundleSha256: a.sha256, configSha256: configDigest(project, fn), manifest: { action: a.path.split('/').pop(), sha256: a.sha256 }, risk: fn.risk, createdBy: actor() })
          const change = (await cp.changeFor(version.id, 'openwhisk')) ?? await cp.requestChange({ function: fn.name, version: version.id, action: 'openwhisk', risk: fn.risk, author: actor() })
          if (change.status !== 'applied') out.push(`${fn.name}: ${change.id} (risk ${fn.risk}: ${change.approvers.length}/${change.required} approvals; sovra approve ${change.id})`)
        }
        return out
      })
      if (waiting.length > 0) throw new SovraError('ERR_APPROVAL', `not deployed: changes wait for approval:\n  ${waiting.join('\n  ')}\nrun the deploy again once they are approved`)
    }
    const needsS3 = selected.functions.some((f) => f.buckets.length > 0)
    const storage = project.config.storage
    const s3 = needsS3 ? s3SettingsFromEnv(env, { ...(storage?.endpoint === undefined ? {} : { endpoint: storage.endpoint }), ...(storage?.region === undefined ? {} : { region: storage.region }), ...(storage?.access_key_id === undefined ? {} : { accessKeyId: storage.access_key_id }) }) : undefined
    const secretNames = [...new Set(selected.functions.flatMap((f) => f.secrets))]
    const ow = owClient({ apihost, auth, ...(ns === undefined ? {} : { namespace: ns }) })
    const actual = await readActual(ow, project.name)
    const pkgActual = actual.find((a) => a.kind === 'package')
    const currentBase = only === undefined && values.canary === undefined ? {} : (pkgActual?.current ?? {})
    const routingBase = only === undefined && values.canary === undefined ? {} : (pkgActual?.routing ?? {})
    const canaryWeight = values.canary === undefined ? undefined : Number(values.canary)
    if (canaryWeight !== undefined && (!Number.isInteger(canaryWeight) || canaryWeight < 0 || canaryWeight > 100)) throw new SovraError('ERR_USAGE', `--canary: expected a percentage 0-100, received ${JSON.stringify(values.canary)}`)
    const objectFns = project.functions.filter((f) => (f.worker.object_triggers?.length ?? 0) > 0)
    const bridge = objectFns.length > 0 ? await buildBridgeAction(outDir, project.dir) : undefined
    const webhookToken = project.secrets.pick(['MINIO_WEBHOOK_TOKEN'])['MINIO_WEBHOOK_TOKEN']
    const aiToken = project.secrets.pick(['AI_ROUTER_TOKEN'])['AI_ROUTER_TOKEN']
    const ai = aiUrl !== undefined && aiToken !== undefined ? { url: aiUrl, token: aiToken } : undefined
    const desired = desiredState(selected, artifacts, {
      secrets: project.secrets.pick(secretNames), ...(s3 === undefined ? {} : { s3 }),
      ...(bridge === undefined ? {} : { bridge, bridgeFunctions: objectFns }), ...(webhookToken === undefined ? {} : { webhookToken }), ...(ai === undefined ? {} : { ai }), currentBase, routingBase, canaryWeight,
    })
    const plan = planDeploy(desired, actual, { prune: values.prune === true, ...(only === undefined ? {} : { functions: only }) })
    io.out(`plan for ${apihost} (package ${project.name}): ${plan.steps.filter((s) => s.op === 'create').length} to create, ${plan.steps.filter((s) => s.op === 'update').length} to update, ${plan.steps.filter((s) => s.op === 'delete').length} to delete, ${plan.unchanged.length} unchanged`)
    for (const s of plan.steps) io.out(`  ${s.op === 'create' ? '+' : s.op === 'update' ? '~' : '-'} ${s.kind} ${s.name} (${s.why})`)
    if (values.plan === true) return 0
    await applyPlan(ow, plan)
    if (plan.steps.length > 0) {
      // On record: who changed the cluster, which versions went live, what was removed.
      await audit(project, values.state, {
        action: 'deploy.openwhisk', subject: `package:${project.name}`, after: desired.find((d) => d.kind === 'package')?.digest,
        details: { apihost, steps: plan.steps.map((st) => `${st.op} ${st.kind} ${st.name}`), ...(canaryWeight === undefined ? {} : { canary_weight: canaryWeight }) },
      })
    }
    io.out(plan.steps.length === 0 ? 'nothing to do: the cluster is as the config says' : `applied ${plan.steps.length} change${plan.steps.length === 1 ? '' : 's'}`)
    for (const d of desired.filter((e) => e.kind === 'action')) {
      const fn = selected.functions.find((f) => f.name === d.function)
      if (fn !== undefined && fn.routes.length > 0) io.out(`  ${fn.name}: ${apihost.replace(/\/+$/, '')}/api/v1/web/${ns ?? '_'}/${d.name}  (routes ${fn.routes.join(', ')})`)
    }
    if (bridge !== undefined) {
      io.out('point MinIO bucket notifications at the events bridge (MINIO_WEBHOOK_TOKEN as in .dev.vars):')
      for (const line of minioCommands(project, `${apihost.replace(/\/+$/, '')}/api/v1/web/${ns ?? '_'}/${project.name}/${BRIDGE_ACTION}`)) io.out(`  ${line}`)
    }
    return 0
  },
}
