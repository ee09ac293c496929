import type { Db } from '../../runtime/core/ports.ts'
import { SovraError } from '../../runtime/core/errors.ts'
import type { Envelope } from '../registry/dsse.ts'
import type { TrustPolicy } from '../registry/trust.ts'
import { verifyApproval, type Actor, type ApprovalSubject } from './approvals.ts'
import { auditLog } from './audit.ts'
import type { Change } from './control-plane.ts'
import { applyChange, beforeOf, readChange } from './changes.ts'

/**
 * Approvals of pending changes: what an approval signs, a signed approval checked against the trust list, and the
 * approval itself (distinct approvers, never the author, verified above low risk), applying the change once enough
 * agreed. Part of the control plane (`controlPlane(db)` returns these with the rest).
 * @param db the store
 * @param cp the control plane's version and routing reads
 */
export function changeApprovals(
  db: Db,
  cp: {
    version(id: string): Promise<{ bundleSha256: string; configSha256: string } | undefined>
    routing(fn: string): Promise<{ stable: string; canary?: { version: string } | undefined } | undefined>
  },
) {
  const audit = auditLog(db)
  /**
   * A change with its version's digests: what an approval signs.
   * @param changeId the change
   */
  async function approvalSubject(changeId: string): Promise<ApprovalSubject & { change: Change }> {
    const c = await readChange(db, changeId)
    const v = await cp.version(c.version)
    if (v === undefined)
      throw new SovraError('ERR_NOT_FOUND', `change ${changeId} names no recorded version ${c.version}`)
    return {
      ...c,
      canaryWeight: c.canaryWeight,
      bundleSha256: v.bundleSha256,
      configSha256: v.configSha256,
      change: c,
    }
  }

  /**
   * Approves a change with a signed statement (sovra approve --key): checked against the trust list's `approve`
   * keys and this change's digests; the approver is the key's name.
   * @param changeId the change
   * @param envelope the signed statement
   * @param trust the trust policy
   */
  async function approveSigned(changeId: string, envelope: Envelope, trust: TrustPolicy): Promise<Change> {
    return approve(changeId, verifyApproval(envelope, await approvalSubject(changeId), trust))
  }

  /**
   * Approves a change; refuses the author, repeat approvers, and (above low risk) an approver who is only claimed:
   * medium and high risk need a signed statement or a verified token. Applies the change when enough distinct
   * approvers agreed.
   * @param changeId the change
   * @param who the approver (a bare name counts as claimed)
   */
  async function approve(changeId: string, who: Actor | string): Promise<Change> {
    const approver: Actor = typeof who === 'string' ? { name: who, via: 'claimed' } : who
    const name = approver.name
    const c = await readChange(db, changeId)
    if (c.status !== 'pending') throw new SovraError('ERR_APPROVAL', `change ${changeId} is ${c.status}, not pending`)
    if (approver.via === 'claimed' && c.risk !== 'low')
      throw new SovraError(
        'ERR_APPROVAL',
        `change ${changeId} is ${c.risk} risk: an approval must be signed by the approver's own key (sovra approve ${changeId} --key NAME, a key trusted for "approve") or come with a verified token; ${JSON.stringify(name)} is only a claimed name (SOVRA_ACTOR or the OS user)`,
      )
    if (name === c.author)
      throw new SovraError(
        'ERR_APPROVAL',
        `${name} is the author of change ${changeId} and cannot approve it; ${c.required} approval(s) from others are needed (risk ${c.risk})`,
      )
    if (c.approvers.includes(name))
      throw new SovraError(
        'ERR_APPROVAL',
        `${name} already approved change ${changeId}; it needs ${c.required} distinct approvers (risk ${c.risk}), has ${c.approvers.length}`,
      )
    const done = c.approvers.length + 1 >= c.required
    const before = done ? beforeOf(await cp.routing(c.function), c.action) : undefined
    await db.tx(async (tx) => {
      await tx.query(
        'INSERT INTO sovra_approvals (change_id, approver, verified_by, key_id, statement) VALUES ($1, $2, $3, $4, $5)',
        [
          changeId,
          name,
          approver.via,
          approver.keyid ?? null,
          approver.statement === undefined ? null : JSON.stringify(approver.statement),
        ],
      )
      if (done) {
        await applyChange(tx, {
          function: c.function,
          version: c.version,
          action: c.action,
          target: c.target,
          canary_weight: c.canaryWeight,
        })
        await tx.query("UPDATE sovra_changes SET status = 'applied' WHERE id = $1", [changeId])
      }
    })
    await audit.append({
      actor: name,
      action: 'approve',
      subject: changeId,
      after: c.version,
      details: {
        function: c.function,
        approvals: c.approvers.length + 1,
        required: c.required,
        verified_by: approver.via,
        ...(approver.keyid === undefined ? {} : { key_id: approver.keyid }),
        ...(approver.statement === undefined ? {} : { signed_at: approver.statement.at }),
      },
    })
    if (done)
      await audit.append({
        actor: name,
        action: c.action,
        subject: c.function,
        ...(before === undefined ? {} : { before }),
        after: c.version,
        details: { change: changeId },
      })
    return readChange(db, changeId)
  }

  return { approvalSubject, approveSigned, approve }
}
