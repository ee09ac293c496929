import type { Db } from '../../runtime/core/ports.ts'
import { SovraError } from '../../runtime/core/errors.ts'
import type { Change, Risk } from './control-plane.ts'

/** The target of changes that move the embedded host's routing. */
export const LOCAL_TARGET = 'local'

/** What a change's statements run on: the store, or a transaction. */
export type Tx = Pick<Db, 'query' | 'exec'>

/**
 * What a change replaces, for its audit entry's `before`: the stable version a promotion replaces, the canary a new
 * canary replaces (none before a function's first version).
 * @param route the function's routing before the change
 * @param action the change's action
 */
export function beforeOf(
  route: { stable: string; canary?: { version: string } | undefined } | undefined,
  action: Change['action'],
): string | undefined {
  if (route === undefined) return undefined
  return action === 'promote' ? route.stable : route.canary?.version
}

/**
 * Moves the embedded host's routing for an applied change (changes for other targets are carried out by their
 * deploys).
 * @param tx the transaction
 * @param c the change
 */
export async function applyChange(
  tx: Tx,
  c: {
    function: string
    version: string
    action: 'canary' | 'promote'
    target: string
    canary_weight: number | null
  },
): Promise<void> {
  // A change for another target is carried out by that target's next deploy once applied; the host's routing stays.
  if (c.target !== LOCAL_TARGET) return
  const route = (
    await tx.query<{ stable: string; canary: string | null }>(
      'SELECT stable, canary FROM sovra_routes WHERE function = $1',
      [c.function],
    )
  ).rows[0]
  if (route === undefined) {
    // The first version of a function is stable at once: there is nothing to canary against.
    await tx.query('INSERT INTO sovra_routes (function, stable) VALUES ($1, $2)', [c.function, c.version])
  } else if (c.action === 'canary') {
    await tx.query('UPDATE sovra_routes SET canary = $2, canary_weight = $3, updated_at = now() WHERE function = $1', [
      c.function,
      c.version,
      c.canary_weight ?? 0,
    ])
  } else {
    await tx.query(
      'UPDATE sovra_routes SET previous = stable, stable = $2, canary = NULL, canary_weight = 0, updated_at = now() WHERE function = $1',
      [c.function, c.version],
    )
  }
}

/**
 * A change with its approvers; ERR_NOT_FOUND naming how to list them.
 * @param db the store
 * @param id the change id
 */
export async function readChange(db: Pick<Db, 'query'>, id: string): Promise<Change> {
  const row = (await db.query<Record<string, unknown>>('SELECT * FROM sovra_changes WHERE id = $1', [id])).rows[0]
  if (row === undefined)
    throw new SovraError(
      'ERR_NOT_FOUND',
      `no change ${JSON.stringify(id)}; list pending ones with: sovra rollout status <fn>`,
    )
  const approvers = (
    await db.query<{ approver: string }>('SELECT approver FROM sovra_approvals WHERE change_id = $1 ORDER BY at', [id])
  ).rows.map((r) => r.approver)
  return {
    id,
    function: String(row['function']),
    version: String(row['version']),
    action: row['action'] as Change['action'],
    target: String(row['target']),
    canaryWeight: row['canary_weight'] as number | null,
    risk: row['risk'] as Risk,
    author: String(row['author']),
    required: Number(row['required']),
    status: row['status'] as Change['status'],
    approvers,
  }
}
