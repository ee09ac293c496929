import type { Db } from '../../runtime/core/ports.ts'
import type { Risk } from './control-plane.ts'

/** One approval a version received: who, on which change, and how the approver was established (migration 009). */
export interface VersionApproval {
  change: string
  /** The deploy target of the change (`local`: the embedded host's routing; `openwhisk`: the cluster). */
  target: string
  approver: string
  /** `signature` (a statement signed with a trusted `approve` key), `jwt` (a verified token) or `claimed`. */
  verifiedBy: string
  /** The signing key's id when the approval was signed. */
  keyId: string | null
  at: string
}

/** One recorded version of a function, with where it stands now and who deployed and approved it. */
export interface VersionHistoryEntry {
  id: string
  function: string
  bundleSha256: string
  configSha256: string
  risk: Risk
  createdBy: string
  createdAt: string
  /**
   * Where the version stands now, in words: `stable`, `canary N%`, `previous` (what a rollback returns to),
   * `pinned for attr=value` (one per pin), `pending approval chg-...` (one per change still waiting). Empty: none.
   */
  state: string[]
  /** Every approval of a change that asked for this version, oldest first. */
  approvals: VersionApproval[]
}

/**
 * Reads a function's version history from the control plane's tables (migrations 005 and 009): every recorded
 * version, newest first, with its digests, author, state in the routing and approvals.
 * @param db the store
 * @example
 * const history = await versionHistory(db).versions('echo')
 * for (const v of history) console.log(v.id, v.state.join(', ') || 'none')
 */
export function versionHistory(db: Pick<Db, 'query'>) {
  return {
    /**
     * The versions of one function, newest first (empty when it was never deployed).
     * @param fn the function
     */
    async versions(fn: string): Promise<VersionHistoryEntry[]> {
      const rows = (
        await db.query<{
          id: string
          bundle_sha256: string
          config_sha256: string
          risk: Risk
          created_by: string
          created_at: Date | string
        }>(
          'SELECT id, bundle_sha256, config_sha256, risk, created_by, created_at FROM sovra_versions WHERE function = $1 ORDER BY created_at DESC, id DESC',
          [fn],
        )
      ).rows
      if (rows.length === 0) return []
      const states = await stateOf(db, fn)
      const approvals = new Map<string, VersionApproval[]>()
      const approvalRows = (
        await db.query<{
          version: string
          change_id: string
          target: string
          approver: string
          verified_by: string
          key_id: string | null
          at: Date | string
        }>(
          'SELECT c.version, a.change_id, c.target, a.approver, a.verified_by, a.key_id, a.at FROM sovra_approvals a JOIN sovra_changes c ON c.id = a.change_id WHERE c.function = $1 ORDER BY a.at, a.approver',
          [fn],
        )
      ).rows
      for (const r of approvalRows) {
        const list = approvals.get(r.version) ?? []
        list.push({
          change: r.change_id,
          target: r.target,
          approver: r.approver,
          verifiedBy: r.verified_by,
          keyId: r.key_id,
          at: new Date(r.at).toISOString(),
        })
        approvals.set(r.version, list)
      }
      return rows.map((r) => ({
        id: r.id,
        function: fn,
        bundleSha256: r.bundle_sha256,
        configSha256: r.config_sha256,
        risk: r.risk,
        createdBy: r.created_by,
        createdAt: new Date(r.created_at).toISOString(),
        state: states.get(r.id) ?? [],
        approvals: approvals.get(r.id) ?? [],
      }))
    },
  }
}

/** The version history's queries. */
export type VersionHistory = ReturnType<typeof versionHistory>

/** Each version's state words from the routing, the pins and the changes still waiting for approval. */
async function stateOf(db: Pick<Db, 'query'>, fn: string): Promise<Map<string, string[]>> {
  const states = new Map<string, string[]>()
  const add = (version: string | null, word: string): void => {
    if (version === null) return
    states.set(version, [...(states.get(version) ?? []), word])
  }
  const route = (
    await db.query<{ stable: string; canary: string | null; canary_weight: number; previous: string | null }>(
      'SELECT stable, canary, canary_weight, previous FROM sovra_routes WHERE function = $1',
      [fn],
    )
  ).rows[0]
  if (route !== undefined) {
    add(route.stable, 'stable')
    add(route.canary, `canary ${route.canary_weight}%`)
    add(route.previous, 'previous')
  }
  const pins = await db.query<{ attribute: string; value: string; version: string }>(
    'SELECT attribute, value, version FROM sovra_pins WHERE function = $1 ORDER BY attribute, value',
    [fn],
  )
  for (const p of pins.rows) add(p.version, `pinned for ${p.attribute}=${p.value}`)
  const pending = await db.query<{ id: string; version: string }>(
    "SELECT id, version FROM sovra_changes WHERE function = $1 AND status = 'pending' ORDER BY created_at",
    [fn],
  )
  for (const c of pending.rows) add(c.version, `pending approval ${c.id}`)
  return states
}
