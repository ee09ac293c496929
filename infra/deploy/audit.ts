import { SovraError } from '../../runtime/core/errors.ts'
import type { Db } from '../../runtime/core/ports.ts'
import type { AuditCheckpoints, ChainHead, Checkpoint } from './audit-checkpoints.ts'
import { entryHash, fromRow, GENESIS, type AuditEntry, type AuditInput, type AuditRow } from './audit-entry.ts'
import { label, verifyChain, type AuditVerification } from './audit-verify.ts'

export { entryHash, GENESIS, type AuditEntry, type AuditInput } from './audit-entry.ts'
export type { AuditVerification } from './audit-verify.ts'

const LOCK = 7_368_112_002
const ANCHOR = Symbol.for('sovra.audit.checkpoints')

/**
 * Anchors the audit log of a store: every {@link auditLog} over it (or over a copy of it) writes signed checkpoints
 * there and verifies against them. `openStore` does this, so each caller of `auditLog(db)` is anchored.
 * @param db the store
 * @param checkpoints where checkpoints go
 */
export function anchorAudit<T extends Db>(db: T, checkpoints: AuditCheckpoints): T {
  // A symbol property (not a WeakMap): a store shared with a command (`{ ...held, close }`) keeps its anchor.
  ;(db as T & { [ANCHOR]?: AuditCheckpoints })[ANCHOR] = checkpoints
  return db
}

/**
 * The audit log in the SQL store (migration 004): append under an advisory lock so the chain has one order; read;
 * verify the chain from the first entry and against the signed checkpoints of its head.
 * @param db the store
 * @param options where checkpoints go (default: the store's anchor, see {@link anchorAudit}; none: unanchored)
 * @example
 * const audit = auditLog(db)
 * await audit.append({ actor: 'alice', action: 'deploy', subject: 'ask', after: 'sha256:...' })
 * const result = await audit.verify() // { ok: true, entries: 1, checkpoints: 1, latest: {...} }
 */
export function auditLog(db: Db, options: { checkpoints?: AuditCheckpoints } = {}) {
  const anchor = options.checkpoints ?? (db as Db & { [ANCHOR]?: AuditCheckpoints })[ANCHOR]
  return {
    /** Appends one entry, linked to the latest; signs a checkpoint when one is due (see {@link AuditCheckpoints}). */
    async append(input: AuditInput): Promise<AuditEntry> {
      const { entry, head } = await db.tx(async (tx) => {
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
        const r = await tx.query<AuditRow>(
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
        const entry = fromRow(r.rows[0] as AuditRow)
        if (anchor === undefined || !anchor.due(entry.action, entry.id)) return { entry, head: undefined }
        // Counted under the lock: the entry's position in the chain, whatever gaps the ids have.
        const n = (
          await tx.query<{ n: string | number }>('SELECT count(*) AS n FROM sovra_audit WHERE id <= $1', [entry.id])
        ).rows[0]?.n
        return { entry, head: { entries: Number(n), headId: entry.id, headHash: entry.hash } satisfies ChainHead }
      })
      // Signed after the commit: a checkpoint never vouches for an entry that was rolled back.
      if (head !== undefined && anchor !== undefined) await writeCheckpoint(anchor, head, entry)
      return entry
    },

    /** Entries in order, optionally since a time (an ISO 8601 date or date-time). */
    async list(options: { since?: string; limit?: number } = {}): Promise<AuditEntry[]> {
      if (options.since !== undefined && Number.isNaN(Date.parse(options.since)))
        throw new SovraError(
          'ERR_BAD_REQUEST',
          `audit since: expected an ISO 8601 date or date-time (2026-11-01, 2026-11-01T09:30:00Z), received ${JSON.stringify(options.since)}`,
        )
      const limit = options.limit ?? 1000
      if (!Number.isInteger(limit) || limit < 1)
        throw new SovraError('ERR_BAD_REQUEST', `audit limit: expected a whole number >= 1, received ${limit}`)
      const r = await db.query<AuditRow>(
        'SELECT * FROM sovra_audit WHERE ($1::timestamptz IS NULL OR at >= $1::timestamptz) ORDER BY id LIMIT $2',
        [options.since ?? null, limit],
      )
      return r.rows.map(fromRow)
    },

    /**
     * Recomputes the chain from the first entry and checks it against every signed checkpoint (see
     * {@link verifyChain}): an edited field, a deleted, inserted or reordered row, a deleted tail, an emptied table
     * and a re-hashed chain are each named.
     */
    verify: (): Promise<AuditVerification> => verifyChain(db, anchor),

    /**
     * Signs a checkpoint of the current head now (`sovra audit checkpoint`); ERR_CONFIG when the log is unanchored,
     * ERR_BAD_REQUEST when the chain is empty. Verify first: a checkpoint vouches for whatever the head is.
     */
    async checkpoint(): Promise<Checkpoint> {
      if (anchor === undefined)
        throw new SovraError('ERR_CONFIG', 'this audit log has no checkpoint store (open it with openStore)')
      const row = (
        await db.query<{ id: string | number; hash: string; n: string | number }>(
          'SELECT id, hash, (SELECT count(*) FROM sovra_audit) AS n FROM sovra_audit ORDER BY id DESC LIMIT 1',
        )
      ).rows[0]
      if (row === undefined)
        throw new SovraError('ERR_BAD_REQUEST', 'the audit chain is empty: there is no head to checkpoint yet')
      return anchor.write({ entries: Number(row.n), headId: Number(row.id), headHash: row.hash })
    },
  }
}

async function writeCheckpoint(anchor: AuditCheckpoints, head: ChainHead, e: AuditEntry): Promise<void> {
  try {
    await anchor.write(head)
  } catch (error) {
    throw new SovraError(
      'ERR_INTERNAL',
      `${label(e)} was recorded, but its signed checkpoint (entry ${head.entries}) could not be written: ${(error as Error).message}; the next checkpoint covers it, or run sovra audit checkpoint`,
      { cause: error },
    )
  }
}

/** The audit log's operations. */
export type AuditLog = ReturnType<typeof auditLog>
