import { createHash } from 'node:crypto'

import type { Db } from '../../runtime/core/ports.ts'

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
const LOCK = 7_368_112_002

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

interface Row {
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

function fromRow(r: Row): AuditEntry {
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

/**
 * The audit log in the SQL store (migration 004): append under an advisory lock so the chain has one order; read;
 * and verify the chain from the first entry.
 * @param db the store
 * @example
 * const audit = auditLog(db)
 * await audit.append({ actor: 'alice', action: 'deploy', subject: 'ask', after: 'sha256:...' })
 * const result = await audit.verify() // { ok: true, entries: 1 }
 */
export function auditLog(db: Db) {
  return {
    /** Appends one entry, linked to the latest. */
    async append(input: AuditInput): Promise<AuditEntry> {
      return db.tx(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK])
        const last = (await tx.query<{ hash: string }>('SELECT hash FROM sovra_audit ORDER BY id DESC LIMIT 1')).rows[0]
        const prevHash = last?.hash ?? GENESIS
        const at = new Date().toISOString()
        const fields = {
          at,
          actor: input.actor,
          action: input.action,
          subject: input.subject,
          before: input.before,
          after: input.after,
          reason: input.reason,
          details: input.details ?? {},
        }
        const hash = entryHash(prevHash, fields)
        const r = await tx.query<Row>(
          `INSERT INTO sovra_audit (at, actor, action, subject, before_digest, after_digest, reason, details, prev_hash, hash)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
          [
            at,
            input.actor,
            input.action,
            input.subject,
            input.before ?? null,
            input.after ?? null,
            input.reason ?? null,
            JSON.stringify(input.details ?? {}),
            prevHash,
            hash,
          ],
        )
        return fromRow(r.rows[0] as Row)
      })
    },

    /** Entries in order, optionally since a time. */
    async list(options: { since?: string; limit?: number } = {}): Promise<AuditEntry[]> {
      const r = await db.query<Row>(
        'SELECT * FROM sovra_audit WHERE ($1::timestamptz IS NULL OR at >= $1::timestamptz) ORDER BY id LIMIT $2',
        [options.since ?? null, options.limit ?? 1000],
      )
      return r.rows.map(fromRow)
    },

    /**
     * Recomputes the chain from the first entry; names the first broken entry and why.
     * @returns ok and the number of entries, or the first broken entry's id and the reason
     */
    async verify(): Promise<
      { ok: true; entries: number } | { ok: false; entries: number; brokenId: number; reason: string }
    > {
      let prev = GENESIS
      let n = 0
      for (let after = 0; ;) {
        const rows = (
          await db.query<Row>('SELECT * FROM sovra_audit WHERE id > $1 ORDER BY id LIMIT 1000', [after])
        ).rows.map(fromRow)
        if (rows.length === 0) return { ok: true, entries: n }
        for (const e of rows) {
          n++
          if (e.prevHash !== prev)
            return {
              ok: false,
              entries: n,
              brokenId: e.id,
              reason: `entry ${e.id} links to ${e.prevHash.slice(0, 12)}..., but the entry before it hashes to ${prev.slice(0, 12)}... (an entry was removed or reordered)`,
            }
          const h = entryHash(prev, e)
          if (h !== e.hash)
            return {
              ok: false,
              entries: n,
              brokenId: e.id,
              reason: `entry ${e.id} (${e.action} ${e.subject} by ${e.actor}) was edited: its fields hash to ${h.slice(0, 12)}..., the stored hash is ${e.hash.slice(0, 12)}...`,
            }
          prev = e.hash
          after = e.id
        }
      }
    },
  }
}

/** The audit log's operations. */
export type AuditLog = ReturnType<typeof auditLog>
