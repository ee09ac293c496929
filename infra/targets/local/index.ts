import { bundleFunction, type FunctionBundle } from '../../../runtime/isolate/bundle.ts'
import { buildDir } from '../../../runtime/hosts/local/functions.ts'
import { SovraError } from '../../../runtime/core/errors.ts'
import { versionId } from '../../deploy/control-plane.ts'
import { configDigest, describeChange, withControlPlane } from '../../deploy/versions.ts'
import { keysDir, loadTrust, openRegistry } from '../../deploy/project-state.ts'
import { loadKey } from '../../registry/keys.ts'
import { defineTarget } from '../define.ts'

interface Built {
  fn: string
  bundle: FunctionBundle
  configSha256: string
  manifest: unknown
  signer: string
}

interface Planned extends Built {
  version: string
  /** Already stable and no canary asked: nothing to do. */
  current: boolean
}

/**
 * The embedded target (`sovra deploy`, the default): each function's bundle pushed to the signed registry (kind
 * bundle) and verified against the trust policy (unsigned, untrusted or tampered: ERR_SIGNATURE), recorded as an
 * immutable version, and asked to become stable (or the canary at N%), subject to approvals by risk class. A
 * running host picks the routing up on its next control-plane tick.
 */
export const local = defineTarget<Built[], Planned[]>({
  name: 'local',
  async build(ctx, req) {
    const { project } = ctx
    const registry = openRegistry(project, ctx.state)
    const trust = loadTrust(project)
    // A dry run needs no signing key: nothing it builds is recorded or served.
    const key = req.planOnly ? undefined : loadKey(keysDir(project), req.key ?? 'default')
    const out: Built[] = []
    for (const fn of req.functions) {
      const bundle = await bundleFunction(fn, buildDir(project))
      if (key === undefined) {
        out.push({
          fn: fn.name,
          bundle,
          configSha256: configDigest(project, fn),
          manifest: undefined,
          signer: '(unsigned: plan only)',
        })
        continue
      }
      await registry
        .push(bundle.path, { kind: 'bundle', name: fn.name, version: bundle.version, createdBy: ctx.actor }, key)
        .catch((e: unknown) => {
          if (!(e instanceof Error) || !/already exists/.test(e.message)) throw e
        })
      const verified = await registry.verify(`registry:${fn.name}@sha256:${bundle.sha256}`, 'bundle', trust)
      out.push({
        fn: fn.name,
        bundle,
        configSha256: configDigest(project, fn),
        manifest: verified.manifest,
        signer: verified.signer,
      })
    }
    return out
  },
  async plan(ctx, req, built) {
    return withControlPlane(ctx.project, ctx.state, async (cp) => {
      const plan: Planned[] = []
      const lines: string[] = []
      for (const b of built) {
        const version = versionId(b.fn, b.bundle.sha256, b.configSha256)
        const route = await cp.routing(b.fn)
        // Asking again for what already holds (or already waits for approval) opens no new change.
        const holds =
          req.canary === undefined
            ? route?.stable === version
            : route?.canary?.version === version && route.canary.weight === req.canary
        const waiting = (await cp.pending(b.fn)).find(
          (c) =>
            c.target === 'local' &&
            c.version === version &&
            c.action === (req.canary === undefined ? 'promote' : 'canary') &&
            (req.canary === undefined || c.canaryWeight === req.canary),
        )
        plan.push({ ...b, version, current: holds || waiting !== undefined })
        lines.push(
          holds
            ? `${b.fn}: ${version} is already ${req.canary === undefined ? 'stable' : `the canary at ${req.canary}%`}`
            : waiting !== undefined
              ? `${b.fn}: ${version} already waits for approval in ${waiting.id} (${waiting.approvers.length}/${waiting.required}; sovra approve ${waiting.id})`
              : `plan: ${b.fn} ${version} -> ${req.canary === undefined ? 'stable' : `canary ${req.canary}%`}`,
        )
      }
      return { plan, lines }
    })
  },
  async apply(ctx, req, plan) {
    const risk = new Map(req.functions.map((f) => [f.name, f.risk]))
    await withControlPlane(ctx.project, ctx.state, async (cp) => {
      for (const p of plan.filter((x) => !x.current)) {
        const fnRisk = risk.get(p.fn) ?? 'low'
        const version = await cp.recordVersion({
          function: p.fn,
          bundleSha256: p.bundle.sha256,
          configSha256: p.configSha256,
          manifest: p.manifest,
          risk: fnRisk,
          createdBy: ctx.actor,
        })
        const change = await cp.requestChange({
          function: p.fn,
          version: version.id,
          action: req.canary === undefined ? 'promote' : 'canary',
          ...(req.canary === undefined ? {} : { weight: req.canary }),
          risk: fnRisk,
          author: ctx.actor,
        })
        ctx.say(
          `${p.fn}: ${version.id} (bundle sha256:${p.bundle.sha256.slice(0, 12)}..., signed by ${p.signer}) -> ${describeChange(change)}`,
        )
      }
    })
  },
  async rollout(ctx, req) {
    const config = ctx.project.functions.find((f) => f.name === req.fn)
    if (config === undefined) throw new SovraError('ERR_USAGE', `unknown function ${JSON.stringify(req.fn)}`)
    await withControlPlane(ctx.project, ctx.state, async (cp) => {
      switch (req.op) {
        case 'status': {
          const r = await cp.routing(req.fn)
          if (r === undefined) return ctx.say(`${req.fn}: not deployed (sovra deploy ${req.fn})`)
          ctx.say(
            `${req.fn}: stable ${r.stable}${r.canary ? `, canary ${r.canary.version} at ${r.canary.weight}%` : ''}${r.previous ? `, previous ${r.previous}` : ''}`,
          )
          for (const p of r.pins) ctx.say(`  pin ${p.attribute}=${p.value} -> ${p.version}`)
          for (const c of await cp.pending(req.fn))
            ctx.say(
              `  pending ${c.id}: ${c.action} ${c.version} by ${c.author}, ${c.approvers.length}/${c.required} approvals`,
            )
          return
        }
        case 'promote': {
          const c = await cp.promote(req.fn, ctx.actor, config.risk, {
            required: config.rollout.require_eval === true,
            runId: req.evalRun,
          })
          return ctx.say(`${req.fn}: ${c.version} -> ${describeChange(c)}`)
        }
        case 'rollback': {
          const r = await cp.rollback(req.fn, ctx.actor, req.reason ?? 'manual rollback')
          return ctx.say(`${req.fn}: rolled back from ${r.from} to ${r.to}`)
        }
        case 'pin':
          await cp.pin(req.fn, req.attribute, req.value, req.version, ctx.actor)
          return ctx.say(`${req.fn}: ${req.attribute}=${req.value} pinned to ${req.version}`)
        case 'unpin':
          await cp.unpin(req.fn, req.attribute, req.value, ctx.actor)
          return ctx.say(`${req.fn}: ${req.attribute}=${req.value} unpinned`)
      }
    })
  },
})
