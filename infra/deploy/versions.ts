import { createHash } from 'node:crypto'
import { relative } from 'node:path'

import type { Project } from '../../runtime/config/resolve.ts'
import type { FunctionConfig } from '../../runtime/config/schema.ts'
import { controlPlane, type Change, type ControlPlane } from './control-plane.ts'
import { withStore } from './project-state.ts'

/**
 * The digest of a function's resolved config as deployed: everything that changes its behaviour except the code
 * (paths relative to the project, so the digest is the same on every machine). With the bundle's digest it makes
 * the version's identity.
 * @param project the project
 * @param fn the function
 */
export function configDigest(project: Project, fn: FunctionConfig): string {
  const { main, ...rest } = fn
  return createHash('sha256')
    .update(JSON.stringify({ ...rest, main: relative(project.dir, main) }))
    .digest('hex')
}

/**
 * Runs `fn` with the control plane on the project's SQL store.
 * @param project the project
 * @param state the state folder override
 * @param fn what to do
 */
export async function withControlPlane<T>(
  project: Project,
  state: string | undefined,
  fn: (cp: ControlPlane) => Promise<T>,
): Promise<T> {
  return withStore(project, state, (db) => fn(controlPlane(db)))
}

/**
 * A change's state in words, for the operator: where the version stands, or what approvals it waits for.
 * @param c the change
 */
export function describeChange(c: Change): string {
  if (c.status === 'applied') return c.action === 'canary' ? `canary ${c.canaryWeight ?? 0}%` : 'stable'
  return `pending approval ${c.id} (risk ${c.risk}: ${c.required} approval${c.required === 1 ? '' : 's'} from others than ${c.author}; sovra approve ${c.id})`
}
