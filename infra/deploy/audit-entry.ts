/** The audit log's entries and their hash: what is stored, and what an auditor recomputes. */
import { createHash } from 'node:crypto'

/** One audit entry as written. */
export interface AuditInput {
  actor: string
  /** e.g. `deploy`, `promote`, `rollback`, `pin`, `approve`, `artifact.push`, `signature.refused`, `key.create`. */
  action: string
  /** What it is about: a function, `model:<name>`, a key id, a change id. */
  subject: string
  before?: string | undefined
  after?: string | undefined
  reason?: string | undefined
  details?: Record<string, unknown>
}

/** One audit entry as stored. */
export interface AuditEntry extends AuditInput {
  id: number
  at: string
  prevHash: string
  hash: string
}

/** The hash the first entry links to. */
export const GENESIS = '0'.repeat(64)

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(v ?? null)
}

/**
 * The hash of an entry: sha256 over the previous hash and the canonical JSON of its fields (keys sorted), so any
 * edit of any field, or of the order, breaks every later link.
 * @param prevHash the previous entry's hash
 * @param e the entry's fields
 */
export function entryHash(prevHash: string, e: Omit<AuditEntry, 'id' | 'prevHash' | 'hash'>): string {
  const body = canonical({
    at: e.at,
    actor: e.actor,
    action: e.action,
    subject: e.subject,
    before: e.before ?? null,
    after: e.after ?? null,
    reason: e.reason ?? null,
    details: e.details ?? {},
  })
  return createHash('sha256').update(`${prevHash}\n${body}`).digest('hex')
}
/** A row of `sovra_audit` as the drivers return it. */
export interface AuditRow {
  id: string | number
  at: Date | string
  actor: string
  action: string
  subject: string
  before_digest: string | null
  after_digest: string | null
  reason: string | null
  details: Record<string, unknown> | string
  prev_hash: string
  hash: string
}

/**
 * The entry a stored row holds.
 * @param r the row
 */
export function fromRow(r: AuditRow): AuditEntry {
  const details = typeof r.details === 'string' ? (JSON.parse(r.details) as Record<string, unknown>) : r.details
  return {
    id: Number(r.id),
    at: new Date(r.at).toISOString(),
    actor: r.actor,
    action: r.action,
    subject: r.subject,
    ...(r.before_digest === null ? {} : { before: r.before_digest }),
    ...(r.after_digest === null ? {} : { after: r.after_digest }),
    ...(r.reason === null ? {} : { reason: r.reason }),
    details,
    prevHash: r.prev_hash,
    hash: r.hash,
  }
}
