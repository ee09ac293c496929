import { resolve } from 'node:path'

import { SovraError } from '../../../runtime/core/errors.ts'
import { s3SettingsFromEnv } from '../../storage/s3-bucket.ts'
import { loadKey } from '../../registry/keys.ts'
import { audit, keysDir, loadTrust, openRegistry } from '../../deploy/project-state.ts'
import { configDigest, withControlPlane } from '../../deploy/versions.ts'
import { defineTarget, type DeployRequest, type TargetContext } from '../define.ts'
import { BRIDGE_ACTION, buildAction, buildBridgeAction, type ActionArtifact } from './build.ts'
import { owTarget, requireCluster, type OwTarget } from './cluster.ts'
import { applyPlan, owClient, planDeploy, readActual, type Plan as DeployPlan } from './deploy.ts'
import { checkLimits, desiredState, minioCommands, type DesiredEntity } from './desired.ts'
import { changeRouting } from './rollout.ts'

const USAGE =
  'sovra deploy [fn...] --target openwhisk [--plan] [--prune] [--apihost URL] [--namespace NS] [--out DIR]   (auth: SOVRA_OW_AUTH=uuid:key)'

interface Built {
  cluster: OwTarget & { apihost: string; auth: string }
  artifacts: Map<string, ActionArtifact>
  outDir: string
}

interface Planned extends Built {
  plan: DeployPlan
  desired: DesiredEntity[]
  bridge: boolean
}

function cluster(ctx: TargetContext): Built['cluster'] {
  return requireCluster(
    owTarget(ctx.project, { apihost: ctx.flags['apihost'], namespace: ctx.flags['namespace'] }, ctx.env),
    USAGE,
  )
}

function client(c: Built['cluster']): ReturnType<typeof owClient> {
  return owClient({
    apihost: c.apihost,
    auth: c.auth,
    ...(c.namespace === undefined ? {} : { namespace: c.namespace }),
  })
}

/**
 * A self-hosted Apache OpenWhisk cluster: each function built into a signed CommonJS action (the same bundle the
 * embedded host runs), a plan of creates, updates and deletes against what the cluster has (actions, triggers,
 * rules, alarm feeds, the events bridge, the package's routing), applied once the changes of medium/high-risk
 * functions are approved. Idempotent: a second deploy changes nothing. Rollout changes the package's routing.
 */
export const openwhisk = defineTarget<Built, Planned>({
  name: 'openwhisk',
  async build(ctx, req) {
    const { project } = ctx
    const c = cluster(ctx)
    // Limits first: nothing is built or called when the config cannot deploy.
    checkLimits(project)
    const outDir = req.out === undefined ? resolve(project.dir, 'dist', 'openwhisk') : resolve(req.out)
    const artifacts = new Map<string, ActionArtifact>()
    for (const fn of req.functions) artifacts.set(fn.name, await buildAction(fn, outDir, project.dir))
    // Deploys ship signed artifacts only: each action is pushed to the registry, signed, and verified against the
    // trust policy before anything is sent to the cluster (ERR_SIGNATURE otherwise). A dry run (`--plan`) only reads
    // the cluster and needs no signing key.
    if (req.planOnly) return { cluster: c, artifacts, outDir }
    const key = loadKey(keysDir(project), req.key ?? 'default')
    const registry = openRegistry(project, ctx.state)
    const trust = loadTrust(project)
    for (const a of artifacts.values()) {
      await registry
        .push(
          a.path,
          { kind: 'bundle', name: `${a.function}.openwhisk`, version: a.sha256.slice(0, 12), createdBy: ctx.actor },
          key,
        )
        .catch((e: unknown) => {
          if (!(e instanceof Error) || !/already exists/.test(e.message)) throw e
        })
      await registry.verify(`registry:${a.function}.openwhisk@sha256:${a.sha256}`, 'bundle', trust)
    }
    return { cluster: c, artifacts, outDir }
  },
  async plan(ctx, req, built) {
    const { project, env } = ctx
    const { cluster: c, artifacts, outDir } = built
    const all = req.functions.length === project.functions.length
    const selected = { ...project, functions: req.functions }
    const needsS3 = req.functions.some((f) => f.bindings.some((b) => b.type === 'bucket'))
    const storage = project.config.storage
    const s3 = needsS3
      ? s3SettingsFromEnv(env, {
          ...(storage?.endpoint === undefined ? {} : { endpoint: storage.endpoint }),
          ...(storage?.region === undefined ? {} : { region: storage.region }),
          ...(storage?.access_key_id === undefined ? {} : { accessKeyId: storage.access_key_id }),
        })
      : undefined
    const secretNames = [...new Set(req.functions.flatMap((f) => f.secrets))]
    const actual = await readActual(client(c), project.name)
    const pkgActual = actual.find((a) => a.kind === 'package')
    const keepOthers = !all || req.canary !== undefined
    const objectFns = project.functions.filter((f) => f.objectTriggers.length > 0)
    const bridge = objectFns.length > 0 ? await buildBridgeAction(outDir, project.dir) : undefined
    const webhookToken = project.secrets.pick(['MINIO_WEBHOOK_TOKEN'])['MINIO_WEBHOOK_TOKEN']
    const aiToken = project.secrets.pick(['AI_ROUTER_TOKEN'])['AI_ROUTER_TOKEN']
    const ai = c.aiUrl !== undefined && aiToken !== undefined ? { url: c.aiUrl, token: aiToken } : undefined
    const desired = desiredState(selected, artifacts, {
      secrets: project.secrets.pick(secretNames),
      ...(s3 === undefined ? {} : { s3 }),
      ...(bridge === undefined ? {} : { bridge, bridgeFunctions: objectFns }),
      ...(webhookToken === undefined ? {} : { webhookToken }),
      ...(ai === undefined ? {} : { ai }),
      currentBase: keepOthers ? (pkgActual?.current ?? {}) : {},
      routingBase: keepOthers ? (pkgActual?.routing ?? {}) : {},
      canaryWeight: req.canary,
    })
    const plan = planDeploy(desired, actual, {
      prune: req.prune,
      ...(all ? {} : { functions: req.functions.map((f) => f.name) }),
    })
    const count = (op: string): number => plan.steps.filter((s) => s.op === op).length
    const lines = [
      `plan for ${c.apihost} (package ${project.name}): ${count('create')} to create, ${count('update')} to update, ${count('delete')} to delete, ${plan.unchanged.length} unchanged`,
      ...plan.steps.map(
        (s) => `  ${s.op === 'create' ? '+' : s.op === 'update' ? '~' : '-'} ${s.kind} ${s.name} (${s.why})`,
      ),
    ]
    return { plan: { ...built, plan, desired, bridge: bridge !== undefined }, lines }
  },
  async apply(ctx, req, p) {
    const { project } = ctx
    await requireApprovals(ctx, req, p.artifacts)
    const { cluster: c, plan, desired } = p
    await applyPlan(client(c), plan)
    if (plan.steps.length > 0) {
      // On record: who changed the cluster, which versions went live, what was removed.
      await audit(project, ctx.state, {
        action: 'deploy.openwhisk',
        subject: `package:${project.name}`,
        after: desired.find((d) => d.kind === 'package')?.digest,
        details: {
          apihost: c.apihost,
          steps: plan.steps.map((st) => `${st.op} ${st.kind} ${st.name}`),
          ...(req.canary === undefined ? {} : { canary_weight: req.canary }),
        },
      })
    }
    ctx.say(
      plan.steps.length === 0
        ? 'nothing to do: the cluster is as the config says'
        : `applied ${plan.steps.length} change${plan.steps.length === 1 ? '' : 's'}`,
    )
    const web = `${c.apihost.replace(/\/+$/, '')}/api/v1/web/${c.namespace ?? '_'}`
    for (const d of desired.filter((e) => e.kind === 'action')) {
      const fn = req.functions.find((f) => f.name === d.function)
      if (fn !== undefined && fn.routes.length > 0)
        ctx.say(`  ${fn.name}: ${web}/${d.name}  (routes ${fn.routes.join(', ')})`)
    }
    if (p.bridge) {
      ctx.say('point MinIO bucket notifications at the events bridge (MINIO_WEBHOOK_TOKEN as in .dev.vars):')
      for (const line of minioCommands(project, `${web}/${project.name}/${BRIDGE_ACTION}`)) ctx.say(`  ${line}`)
    }
  },
  async rollout(ctx, req) {
    const config = ctx.project.functions.find((f) => f.name === req.fn)
    if (req.op === 'status')
      throw new SovraError(
        'ERR_USAGE',
        `on OpenWhisk, rollout supports promote, rollback, pin and unpin; received "status"`,
      )
    // A cluster canary of a medium/high-risk function was approved when it was deployed (sovra deploy waits for
    // approvals); promoting it to stable is a further change that needs its own approvals: not supported yet.
    if (req.op === 'promote' && config !== undefined && config.risk !== 'low') {
      throw new SovraError(
        'ERR_APPROVAL',
        `function ${JSON.stringify(req.fn)} has risk ${config.risk}: promoting a cluster canary needs approvals, which only the embedded control plane records yet; deploy the version without --canary once approved`,
      )
    }
    const c = cluster(ctx)
    const pin =
      req.op === 'pin'
        ? { attribute: req.attribute, value: req.value, version: req.version }
        : req.op === 'unpin'
          ? { attribute: req.attribute, value: req.value }
          : undefined
    const { before, after } = await changeRouting(client(c), ctx.project.name, req.fn, req.op, pin)
    const reason = req.op === 'rollback' ? req.reason : undefined
    await audit(ctx.project, ctx.state, {
      action: `${req.op}.openwhisk`,
      subject: req.fn,
      before: before.canary?.version ?? before.stable,
      after: req.op === 'pin' ? req.version : after.stable,
      ...(reason === undefined ? {} : { reason }),
      ...(pin === undefined ? {} : { details: { attribute: pin.attribute, value: pin.value } }),
    })
    const what =
      req.op === 'promote'
        ? `promoted ${after.stable} to stable`
        : req.op === 'rollback'
          ? `canary ${before.canary?.version} dropped; stable ${after.stable}`
          : req.op === 'pin'
            ? `${req.attribute}=${req.value} pinned to ${req.version}`
            : `${req.attribute}=${req.value} unpinned`
    ctx.say(`${req.fn}: ${what} on ${c.apihost}`)
  },
})

/** Approvals by risk: a medium/high-risk function reaches the cluster only once its version's change is approved. */
async function requireApprovals(
  ctx: TargetContext,
  req: DeployRequest,
  artifacts: Map<string, ActionArtifact>,
): Promise<void> {
  const risky = req.functions.filter((f) => f.risk !== 'low')
  if (risky.length === 0) return
  const waiting = await withControlPlane(ctx.project, ctx.state, async (cp) => {
    const out: string[] = []
    for (const fn of risky) {
      const a = artifacts.get(fn.name) as ActionArtifact
      const version = await cp.recordVersion({
        function: fn.name,
        bundleSha256: a.sha256,
        configSha256: configDigest(ctx.project, fn),
        manifest: { action: a.path.split('/').pop(), sha256: a.sha256 },
        risk: fn.risk,
        createdBy: ctx.actor,
      })
      const change =
        (await cp.changeFor(version.id, 'openwhisk')) ??
        (await cp.requestChange({
          function: fn.name,
          version: version.id,
          action: req.canary === undefined ? 'promote' : 'canary',
          ...(req.canary === undefined ? {} : { weight: req.canary }),
          target: 'openwhisk',
          risk: fn.risk,
          author: ctx.actor,
        }))
      if (change.status !== 'applied')
        out.push(
          `${fn.name}: ${change.id} (risk ${fn.risk}: ${change.approvers.length}/${change.required} approvals; sovra approve ${change.id})`,
        )
    }
    return out
  })
  if (waiting.length > 0)
    throw new SovraError(
      'ERR_APPROVAL',
      `not deployed: changes wait for approval:\n  ${waiting.join('\n  ')}\nrun the deploy again once they are approved`,
    )
}
