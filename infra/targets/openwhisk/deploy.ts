import { createRequire } from 'node:module'

import { SovraError } from '../../../runtime/core/errors.ts'
import type { DesiredEntity } from './desired.ts'

type Kind = DesiredEntity['kind']

/** How to reach a cluster. */
export interface OwSettings {
  /** e.g. `https://openwhisk.internal` (or `http://127.0.0.1:3233`). */
  apihost: string
  /** `uuid:key`. */
  auth: string
  namespace?: string
  ignoreCerts?: boolean
}

/** An entity found on the cluster. */
export interface ActualEntity {
  kind: Kind
  name: string
  digest: string | undefined
  function: string | undefined
  /** Rules: the trigger and action they connect (`pkg/action`). */
  rule?: { trigger: string; action: string }
  /** The package: each function's current action. */
  current?: Record<string, string>
  /** The package: each function's routing (stable, canary). */
  routing?: Record<string, { stable: string; canary?: { version: string; weight: number } }>
}

/** One step of a plan. */
export interface PlanStep {
  op: 'create' | 'update' | 'delete'
  kind: Kind
  name: string
  why: string
  desired?: DesiredEntity
  actual?: ActualEntity
}

/** What a deploy would do: the steps, and what is already as desired. */
export interface Plan {
  steps: PlanStep[]
  unchanged: string[]
}

interface OwClient {
  packages: {
    get(o: object): Promise<Record<string, unknown>>
    update(o: object): Promise<unknown>
    delete(o: object): Promise<unknown>
  }
  actions: {
    list(o: object): Promise<Array<Record<string, unknown>>>
    update(o: object): Promise<unknown>
    delete(o: object): Promise<unknown>
  }
  triggers: {
    list(o: object): Promise<Array<Record<string, unknown>>>
    update(o: object): Promise<unknown>
    delete(o: object): Promise<unknown>
  }
  rules: {
    list(o: object): Promise<Array<Record<string, unknown>>>
    get(o: object): Promise<Record<string, unknown>>
    update(o: object): Promise<unknown>
    delete(o: object): Promise<unknown>
    enable(o: object): Promise<unknown>
  }
  feeds: { create(o: object): Promise<unknown>; delete(o: object): Promise<unknown> }
}

/**
 * Creates the OpenWhisk client (the `openwhisk` npm package, apache/openwhisk-client-js).
 * @param s API host and key
 */
export function owClient(s: OwSettings): OwClient {
  const openwhisk = createRequire(import.meta.url)('openwhisk') as (o: Record<string, unknown>) => OwClient
  return openwhisk({
    apihost: s.apihost,
    api_key: s.auth,
    ...(s.namespace === undefined ? {} : { namespace: s.namespace }),
    ignore_certs: s.ignoreCerts ?? false,
  })
}

function annotation(entity: Record<string, unknown>, key: string): unknown {
  return ((entity['annotations'] ?? []) as Array<{ key: string; value: unknown }>).find((a) => a.key === key)?.value
}

function failure(op: string, kind: string, name: string, e: unknown): SovraError {
  const err = e as { statusCode?: number; message?: string; error?: { error?: string } }
  return new SovraError(
    'ERR_UPSTREAM',
    `${op} ${kind} ${name} failed: ${err.statusCode ?? ''} ${err.error?.error ?? err.message ?? String(e)}`.replace(
      / +/g,
      ' ',
    ),
    { cause: e },
  )
}

async function listAll(
  list: (o: object) => Promise<Array<Record<string, unknown>>>,
): Promise<Array<Record<string, unknown>>> {
  const all: Array<Record<string, unknown>> = []
  for (let skip = 0; ; skip += 200) {
    const page = await list({ limit: 200, skip })
    all.push(...page)
    if (page.length < 200) return all
  }
}

/**
 * Reads what sovra manages of a project on the cluster (by the `sovra-project` annotation; rules by name prefix).
 * @param ow the client
 * @param pkg the project's package name
 */
export async function readActual(ow: OwClient, pkg: string): Promise<ActualEntity[]> {
  const out: ActualEntity[] = []
  const step = async <T>(op: string, kind: string, name: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f()
    } catch (e) {
      throw failure(op, kind, name, e)
    }
  }
  try {
    const p = await ow.packages.get({ name: pkg })
    out.push({
      kind: 'package',
      name: pkg,
      digest: annotation(p, 'sovra-digest') as string | undefined,
      function: undefined,
      current: (annotation(p, 'sovra-current') ?? {}) as Record<string, string>,
      routing: (annotation(p, 'sovra-routing') ?? {}) as NonNullable<ActualEntity['routing']>,
    })
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode !== 404) throw failure('get', 'package', pkg, e)
  }
  for (const a of await step('list', 'actions', '', () => listAll((o) => ow.actions.list(o)))) {
    if (String(a['namespace'] ?? '').split('/')[1] !== pkg) continue
    out.push({
      kind: 'action',
      name: `${pkg}/${String(a['name'])}`,
      digest: annotation(a, 'sovra-digest') as string | undefined,
      function: annotation(a, 'sovra-function') as string | undefined,
    })
  }
  for (const t of await step('list', 'triggers', '', () => listAll((o) => ow.triggers.list(o)))) {
    if (annotation(t, 'sovra-project') !== pkg) continue
    out.push({
      kind: 'trigger',
      name: String(t['name']),
      digest: annotation(t, 'sovra-digest') as string | undefined,
      function: annotation(t, 'sovra-function') as string | undefined,
    })
  }
  for (const r of await step('list', 'rules', '', () => listAll((o) => ow.rules.list(o)))) {
    const name = String(r['name'])
    if (!name.startsWith(`${pkg}-`)) continue
    const full = await step('get', 'rule', name, () => ow.rules.get({ name }))
    const trig = full['trigger'] as { name?: string } | undefined
    const act = full['action'] as { name?: string; path?: string } | undefined
    const actPkg = String(act?.path ?? '').split('/')[1]
    out.push({
      kind: 'rule',
      name,
      digest: undefined,
      function: undefined,
      rule: { trigger: String(trig?.name ?? ''), action: `${actPkg}/${String(act?.name ?? '')}` },
    })
  }
  return out
}

/**
 * Compares desired with actual: creates what is missing, updates what differs (by `sovra-digest`; rules by their
 * trigger and action), and with `prune` deletes what sovra manages but no longer wants. `functions` limits the
 * deletes to those functions' entities (a single-function deploy never removes the others).
 * @param desired the desired entities
 * @param actual what the cluster has
 * @param options prune, and the functions a partial deploy covers
 */
export function planDeploy(
  desired: readonly DesiredEntity[],
  actual: readonly ActualEntity[],
  options: { prune: boolean; functions?: readonly string[] },
): Plan {
  const key = (k: Kind, n: string): string => `${k} ${n}`
  const have = new Map(actual.map((a) => [key(a.kind, a.name), a]))
  const want = new Set(desired.map((d) => key(d.kind, d.name)))
  const steps: PlanStep[] = []
  const unchanged: string[] = []
  for (const d of desired) {
    const a = have.get(key(d.kind, d.name))
    if (a === undefined) steps.push({ op: 'create', kind: d.kind, name: d.name, why: 'new', desired: d })
    else if (d.kind === 'rule') {
      const r = d.body as { trigger: string; action: string }
      if (a.rule?.trigger !== r.trigger || a.rule?.action !== r.action)
        steps.push({
          op: 'update',
          kind: d.kind,
          name: d.name,
          why: `action ${a.rule?.action} -> ${r.action}`,
          desired: d,
          actual: a,
        })
      else unchanged.push(key(d.kind, d.name))
    } else if (a.digest !== d.digest)
      steps.push({ op: 'update', kind: d.kind, name: d.name, why: 'definition changed', desired: d, actual: a })
    else unchanged.push(key(d.kind, d.name))
  }
  if (options.prune) {
    const ruleActions = new Set(
      desired.filter((d) => d.kind === 'rule').map((d) => (d.body as { action: string }).action),
    )
    for (const a of actual) {
      if (want.has(key(a.kind, a.name)) || a.kind === 'package') continue
      if (options.functions !== undefined) {
        const fn = a.function ?? (a.kind === 'rule' ? undefined : '')
        if (
          a.kind === 'rule'
            ? !options.functions.some((f) => a.name.includes(`-${f}-`))
            : !options.functions.includes(fn ?? '')
        )
          continue
      }
      if (a.kind === 'action' && ruleActions.has(a.name)) continue
      steps.push({
        op: 'delete',
        kind: a.kind,
        name: a.name,
        why: a.kind === 'action' && a.function !== undefined ? 'not the current version' : 'no longer in the config',
        actual: a,
      })
    }
  }
  const order: Record<string, number> = {
    'create package': 0,
    'update package': 0,
    'create action': 1,
    'update action': 1,
    'delete rule': 2,
    'create trigger': 3,
    'update trigger': 3,
    'create rule': 4,
    'update rule': 4,
    'delete trigger': 5,
    'delete action': 6,
  }
  steps.sort((x, y) => (order[`${x.op} ${x.kind}`] ?? 9) - (order[`${y.op} ${y.kind}`] ?? 9))
  return { steps, unchanged }
}

/**
 * Carries out a plan in order (package, actions, triggers with their alarm feeds, rules; deletes rules first and
 * actions last). Every failure names the entity and the API's answer.
 * @param ow the client
 * @param plan the plan from {@link planDeploy}
 * @param onStep progress (one call per step, before it runs)
 */
export async function applyPlan(
  ow: OwClient,
  plan: Plan,
  onStep: (s: PlanStep) => void = () => undefined,
): Promise<void> {
  for (const s of plan.steps) {
    onStep(s)
    const d = s.desired
    try {
      if (s.op === 'delete') {
        if (s.kind === 'rule') await ow.rules.delete({ name: s.name })
        else if (s.kind === 'trigger') {
          await ow.feeds.delete({ name: '/whisk.system/alarms/alarm', trigger: s.name }).catch(() => undefined)
          await ow.triggers.delete({ name: s.name })
        } else if (s.kind === 'action') await ow.actions.delete({ name: s.name })
        continue
      }
      if (d === undefined) continue
      if (s.kind === 'package') await ow.packages.update({ name: d.name, package: d.body })
      else if (s.kind === 'action') await ow.actions.update({ name: d.name, action: d.body })
      else if (s.kind === 'trigger') {
        // Feeds cannot be changed in place: a changed cron trigger is deleted (feed first) and created again.
        if (s.op === 'update' && d.feed !== undefined) {
          await ow.feeds.delete({ name: '/whisk.system/alarms/alarm', trigger: d.name }).catch(() => undefined)
          await ow.triggers.delete({ name: d.name })
        }
        await ow.triggers.update({ name: d.name, trigger: d.body })
        if (d.feed !== undefined)
          await ow.feeds.create({ name: '/whisk.system/alarms/alarm', trigger: d.name, params: d.feed })
      } else {
        const r = d.body as { trigger: string; action: string }
        await ow.rules.update({ name: d.name, trigger: r.trigger, action: r.action })
        await ow.rules.enable({ name: d.name })
      }
    } catch (e) {
      throw failure(s.op, s.kind, s.name, e)
    }
  }
}
