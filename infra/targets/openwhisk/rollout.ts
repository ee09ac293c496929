import { createHash } from 'node:crypto'

import { SovraError } from '../../../runtime/core/errors.ts'
import type { owClient } from './deploy.ts'
import type { OwRouting } from './desired.ts'

type Client = ReturnType<typeof owClient>

/**
 * Changes one function's routing on the cluster (a package annotation update; no action is rebuilt or uploaded):
 * `promote` makes the canary stable and moves the function's trigger rules to it; `rollback` drops the canary.
 * Returns the routing before and after.
 * @param ow the client
 * @param pkg the project's package
 * @param fn the function
 * @param op promote or rollback
 */
export async function changeRouting(
  ow: Client,
  pkg: string,
  fn: string,
  op: 'promote' | 'rollback' | 'pin' | 'unpin',
  pin?: { attribute: string; value: string; version?: string },
): Promise<{ before: OwRouting; after: OwRouting }> {
  const p = (await ow.packages.get({ name: pkg })) as {
    annotations?: Array<{ key: string; value: unknown }>
    parameters?: unknown[]
  }
  const annotations = p.annotations ?? []
  const routing = {
    ...((annotations.find((a) => a.key === 'sovra-routing')?.value ?? {}) as Record<string, OwRouting>),
  }
  const before = routing[fn]
  if (before === undefined)
    throw new SovraError('ERR_NOT_FOUND', `function ${JSON.stringify(fn)} is not deployed in package ${pkg}`)
  const keep = (b: OwRouting): Array<{ attribute: string; value: string; version: string }> =>
    (b.pins ?? []).filter((p) => pin === undefined || p.attribute !== pin.attribute || p.value !== pin.value)
  let after: OwRouting
  if (op === 'pin' || op === 'unpin') {
    if (pin === undefined || (op === 'pin' && pin.version === undefined))
      throw new SovraError(
        'ERR_USAGE',
        `${op} needs --for attr=value${op === 'pin' ? ' and a version (action name)' : ''}`,
      )
    const pins =
      op === 'pin'
        ? [...keep(before), { attribute: pin.attribute, value: pin.value, version: pin.version as string }]
        : keep(before)
    after = { ...before, pins }
  } else {
    if (before.canary === undefined)
      throw new SovraError(
        'ERR_USAGE',
        `function ${JSON.stringify(fn)} has no canary on the cluster (package ${pkg}); deploy one with: sovra deploy ${fn} --target openwhisk --canary N`,
      )
    after = {
      stable: op === 'promote' ? before.canary.version : before.stable,
      ...(before.pins === undefined ? {} : { pins: before.pins }),
    }
  }
  routing[fn] = after
  const current = Object.fromEntries(Object.entries(routing).map(([f, r]) => [f, r.stable]))
  const digest = createHash('sha256')
    .update(JSON.stringify({ package: pkg, routing }))
    .digest('hex')
  const next = annotations.filter((a) => !['sovra-routing', 'sovra-current', 'sovra-digest'].includes(a.key))
  next.push(
    { key: 'sovra-current', value: current },
    { key: 'sovra-routing', value: routing },
    { key: 'sovra-digest', value: digest },
  )
  await ow.packages.update({ name: pkg, package: { parameters: p.parameters ?? [], annotations: next } })
  if (op === 'promote') {
    // Triggers run stable: their rules follow the promotion.
    const rules = (await ow.rules.list({ limit: 200 }))
      .map((r) => String(r['name']))
      .filter((n) => n.startsWith(`${pkg}-${fn}-`))
    for (const name of rules) {
      const full = await ow.rules.get({ name })
      const trigger = String((full['trigger'] as { name?: string } | undefined)?.name ?? '')
      await ow.rules.update({ name, trigger, action: `${pkg}/${after.stable}` })
      await ow.rules.enable({ name })
    }
  }
  return { before, after }
}
