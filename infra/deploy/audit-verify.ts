/** Verifying the audit chain: each entry's hash and link, and the chain against its signed checkpoints. */
import type { Db } from '../../runtime/core/ports.ts'
import type { AuditCheckpoints, Checkpoint } from './audit-checkpoints.ts'
import { entryHash, fromRow, GENESIS, type AuditEntry, type AuditRow } from './audit-entry.ts'

/** What {@link verifyChain} found. */
export type AuditVerification =
  | {
      ok: true
      entries: number
      /** How many signed checkpoints agree with the chain. */
      checkpoints: number
      /** The newest of them. */
      latest?: Checkpoint
    }
  | {
      ok: false
      entries: number
      checkpoints: number
      /** The first stored entry that is broken, when one is (a deleted tail leaves none). */
      brokenId?: number
      /** Every problem found, joined. */
      reason: string
      problems: string[]
    }

const MAX_PROBLEMS = 20

const short = (h: string): string => `${h.slice(0, 12)}...`
/** How an entry is named in problems. */
export const label = (e: AuditEntry): string => `entry ${e.id} (${e.action} ${e.subject} by ${e.actor})`
const range = (from: number, to: number): string => (from === to ? `entry ${from}` : `entries ${from}-${to}`)
const signed = (c: Checkpoint): string =>
  `the checkpoint of entry ${c.entries} signed at ${c.at} by ${c.signer} (${c.keyid})`

/**
 * Why an entry does not follow the one before it, or undefined when it does.
 * @param db the store (to find the entry a broken link points at)
 * @param e the entry
 * @param prev the hash of the entry stored before it
 * @param before that entry
 * @param n its position in the chain
 */
async function breakOf(
  db: Db,
  e: AuditEntry,
  prev: string,
  before: AuditEntry | undefined,
  n: number,
): Promise<string | undefined> {
  const selfConsistent = entryHash(e.prevHash, e) === e.hash
  if (e.prevHash === prev) {
    if (selfConsistent) return undefined
    return `${label(e)} was edited: its fields hash to ${short(entryHash(prev, e))}, the stored hash is ${short(e.hash)}`
  }
  if (!selfConsistent)
    return entryHash(prev, e) === e.hash
      ? `${label(e)}: its stored link (prev_hash) was changed to ${short(e.prevHash)}; the entry before it hashes to ${short(prev)}`
      : `${label(e)} was edited and no longer links to the entry before it (links to ${short(e.prevHash)}, expected ${short(prev)})`
  // The row is intact but follows another one: rows were deleted, inserted or reordered.
  const target =
    e.prevHash === GENESIS
      ? 0
      : (await db.query<{ id: string | number }>('SELECT id FROM sovra_audit WHERE hash = $1', [e.prevHash])).rows[0]
          ?.id
  if (target === undefined) {
    const gap =
      before === undefined
        ? e.id > 1
          ? ` (ids 1-${e.id - 1} are missing)`
          : ''
        : e.id - before.id > 1
          ? ` (${e.id - before.id === 2 ? `id ${before.id + 1} is` : `ids ${before.id + 1}-${e.id - 1} are`} missing)`
          : ''
    return `${label(e)} links to ${short(e.prevHash)}, which no stored entry has: the entry before it was deleted${gap}`
  }
  const t = Number(target)
  if (t === 0)
    return `${label(e)} is the start of a chain, but ${n - 1} entr${n === 2 ? 'y is' : 'ies are'} stored before it: they were inserted, or rows were reordered`
  if (t > e.id) return `rows were reordered: ${label(e)} links to entry ${t}, which is stored after it`
  return `rows were reordered or inserted: ${label(e)} links to entry ${t}, but entry ${before?.id ?? '?'} is stored between them`
}

/**
 * Recomputes the chain from the first entry and checks it against every signed checkpoint: an edited field, a
 * deleted, inserted or reordered row, a deleted tail, an emptied table and a re-hashed chain are each named.
 * @param db the store
 * @param anchor the checkpoints (none: the chain alone)
 * @returns ok with the entries and checkpoints, or every problem (the first broken entry's id when one is stored)
 */
export async function verifyChain(db: Db, anchor: AuditCheckpoints | undefined): Promise<AuditVerification> {
  const read = anchor === undefined ? { checkpoints: [], problems: [] } : await anchor.read()
  const pending = read.checkpoints
  const problems: string[] = [...read.problems]
  const matched: Checkpoint[] = []
  const mismatched: Array<{ c: Checkpoint; e: AuditEntry }> = []
  let brokenId: number | undefined
  let prev = GENESIS
  let before: AuditEntry | undefined
  let n = 0
  let k = 0
  for (let after = 0; ;) {
    const rows = (
      await db.query<AuditRow>('SELECT * FROM sovra_audit WHERE id > $1 ORDER BY id LIMIT 1000', [after])
    ).rows.map(fromRow)
    if (rows.length === 0) break
    for (const e of rows) {
      n++
      const broken = await breakOf(db, e, prev, before, n)
      if (broken !== undefined) {
        problems.push(broken)
        brokenId ??= e.id
      }
      for (; k < pending.length && (pending[k] as Checkpoint).entries <= n; k++) {
        const c = pending[k] as Checkpoint
        if (c.headHash === e.hash) matched.push(c)
        else mismatched.push({ c, e })
      }
      // Carry on from the stored hash, so one break is reported once and later ones still show.
      prev = e.hash
      before = e
      after = e.id
    }
  }
  const first = mismatched[0]
  if (first !== undefined) problems.push(rehashed(first, matched, mismatched.slice(1)))
  const newest = pending.at(-1)
  if (newest !== undefined && newest.entries > n)
    problems.push(truncated(newest, n, matched.at(-1)?.entries ?? 0, brokenId !== undefined || first !== undefined))
  if (problems.length === 0)
    return {
      ok: true,
      entries: n,
      checkpoints: matched.length,
      ...(matched.length === 0 ? {} : { latest: matched.at(-1) as Checkpoint }),
    }
  const listed =
    problems.length > MAX_PROBLEMS
      ? [...problems.slice(0, MAX_PROBLEMS), `... and ${problems.length - MAX_PROBLEMS} more`]
      : problems
  return {
    ok: false,
    entries: n,
    checkpoints: matched.length,
    ...(brokenId === undefined ? {} : { brokenId }),
    reason: listed.join('; '),
    problems: listed,
  }
}

/** A checkpoint that no longer matches the entry it signed: the chain was rewritten and re-hashed. */
function rehashed(
  first: { c: Checkpoint; e: AuditEntry },
  matched: readonly Checkpoint[],
  others: ReadonlyArray<{ c: Checkpoint }>,
): string {
  const good = matched.filter((c) => c.entries < first.c.entries).at(-1)
  const where =
    good === undefined
      ? `the change is in ${range(1, first.c.entries)}`
      : `the checkpoint of entry ${good.entries} still matches, so the change is in ${range(good.entries + 1, first.c.entries)}`
  const also =
    others.length === 0
      ? ''
      : `; the checkpoints of entries ${others.map((m) => m.c.entries).join(', ')} do not match either`
  return `${signed(first.c)} says entry ${first.c.entries} hashes to ${short(first.c.headHash)}, but it now hashes to ${short(first.e.hash)} (id ${first.e.id}): the chain was rewritten and re-hashed after it was signed; ${where}${also}`
}

/**
 * A checkpoint covering more entries than the chain has: the newest entries, or the whole table, were deleted.
 * @param newest the checkpoint covering the most entries
 * @param n the chain's length
 * @param anchored the length the newest matching checkpoint covers
 * @param broken whether the chain has other breaks (then only the count is certain)
 */
function truncated(newest: Checkpoint, n: number, anchored: number, broken: boolean): string {
  const missing = newest.entries - n
  const head = `the chain has ${n} entries but ${signed(newest)} covers ${newest.entries} entries with head hash ${short(newest.headHash)}`
  if (broken) return `${head}: ${missing} entr${missing === 1 ? 'y is' : 'ies are'} missing`
  if (n === 0) return `${head}: all ${newest.entries} entries were deleted (the table was emptied or truncated)`
  const what = missing === 1 ? `entry ${n + 1} was deleted` : `entries ${n + 1}-${newest.entries} were deleted`
  const ids = newest.headId === newest.entries ? '' : ` (the newest had id ${newest.headId})`
  // Entries past the newest matching checkpoint are vouched for by nothing: they may be re-hashed survivors.
  const unsure =
    anchored >= n
      ? ''
      : ` (or, as ${range(anchored + 1, n)} ${anchored + 1 === n ? 'is' : 'are'} covered by no matching checkpoint, earlier rows were deleted and the later ones re-hashed)`
  return `${head}: ${what}${ids}${unsure}`
}
