import type { Envelope } from '../registry/dsse.ts'
import { openEnvelope, signEnvelope } from '../registry/dsse.ts'
import type { SigningKey } from '../registry/keys.ts'
import type { TrustPolicy } from '../registry/trust.ts'
import { SovraError } from '../../runtime/core/errors.ts'

/** The statement type an approval signs. */
export const APPROVAL_TYPE = 'sovra.approval/v1'

/** Who acts on the control plane, and how the platform knows. */
export interface Actor {
  /** A trusted key's name, a token's subject, or a claimed name (`SOVRA_ACTOR`, the OS user). */
  name: string
  /** `signature`: a signed statement checked against the trust list; `jwt`: a verified token; `claimed`: neither. */
  via: 'signature' | 'jwt' | 'claimed'
  /** The signing key's id (`signature`). */
  keyid?: string
  /** The signed statement (`signature`), kept with the approval for the auditor. */
  statement?: ApprovalStatement
}

/** What an approver signs: the change and the digests of the version it moves to, so an approval cannot be reused. */
export interface ApprovalStatement {
  type: typeof APPROVAL_TYPE
  change: string
  function: string
  version: string
  action: string
  target: string
  canary_weight: number | null
  bundle_sha256: string
  config_sha256: string
  /** ISO 8601, when it was signed. */
  at: string
}

/** The facts of a change an approval must match. */
export interface ApprovalSubject {
  id: string
  function: string
  version: string
  action: string
  target: string
  canaryWeight: number | null
  bundleSha256: string
  configSha256: string
}

/**
 * The statement approving a change.
 * @param c the change and its version's digests
 * @param at when (default now)
 */
export function approvalStatement(c: ApprovalSubject, at = new Date()): ApprovalStatement {
  return {
    type: APPROVAL_TYPE,
    change: c.id,
    function: c.function,
    version: c.version,
    action: c.action,
    target: c.target,
    canary_weight: c.canaryWeight,
    bundle_sha256: c.bundleSha256,
    config_sha256: c.configSha256,
    at: at.toISOString(),
  }
}

/**
 * Signs an approval with the approver's own key (a DSSE envelope, as artifacts are signed).
 * @param c the change and its version's digests
 * @param key the approver's key
 */
export function signApproval(c: ApprovalSubject, key: SigningKey): Envelope {
  return signEnvelope(approvalStatement(c), key.privateKey, key.keyid)
}

/**
 * Checks a signed approval: a key the trust list accepts for `approve`, a signature that verifies, and a statement
 * about this change and these digests. The approver is the trusted key's name.
 * @param envelope the signed statement
 * @param c the change and its version's digests
 * @param trust the trust policy
 */
export function verifyApproval(envelope: Envelope, c: ApprovalSubject, trust: TrustPolicy): Actor {
  const what = `approval of ${c.id}`
  const { payload, keyid } = openEnvelope(envelope, trust.forKind('approve'), what)
  const s = payload as Partial<ApprovalStatement>
  const expected = approvalStatement(c)
  const fields = [
    'type',
    'change',
    'function',
    'version',
    'action',
    'target',
    'canary_weight',
    'bundle_sha256',
    'config_sha256',
  ] as const
  const wrong = fields.filter((f) => s[f] !== expected[f])
  if (wrong.length > 0)
    throw new SovraError(
      'ERR_SIGNATURE',
      `${what}: the signed statement does not match the change in ${wrong.map((f) => `${f} (signed ${JSON.stringify(s[f])}, change ${JSON.stringify(expected[f])})`).join(', ')}`,
    )
  return { name: trust.nameOf(keyid), via: 'signature', keyid, statement: s as ApprovalStatement }
}
