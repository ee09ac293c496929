import { SovraError } from '../../runtime/core/errors.ts'
import type { Db } from '../../runtime/core/ports.ts'
import type { FilterSql, IndexFilter } from './filter.ts'
import { lexicalQuery } from './segment.ts'

/** What a read runs on: the principal's transaction. */
export type Tx = Pick<Db, 'query' | 'exec'>

/** One ranked chunk id with its score. */
export interface Ranked {
  id: string
  score: number
}

/** The reciprocal rank fusion constant (Cormack et al., SIGIR 2009). */
export const RRF_K = 60

/** What the rankers need to know about the index they rank. */
export interface RankContext {
  name: string
  dimensions: number
  vector: boolean
  table: string
  /** Permitted sets up to this size are searched exactly, without the HNSW index. */
  exactThreshold: number
  /** HNSW candidate list (`hnsw.ef_search`); default 100. */
  efSearch: number | undefined
  filterSql: FilterSql
}

/**
 * The pgvector literal of a vector, checked to have the index's dimensions and finite values.
 * @param ctx the index's name and dimensions
 * @param values the vector, or undefined when none was given
 */
export function vectorLiteral(
  ctx: Pick<RankContext, 'name' | 'dimensions'>,
  values: readonly number[] | undefined,
): string {
  if (values?.length !== ctx.dimensions || !values.every(Number.isFinite)) {
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `index ${ctx.name}: expected a vector of ${String(ctx.dimensions)} finite numbers, received ${values === undefined ? 'none' : `${String(values.length)} values`}`,
    )
  }
  return `[${values.join(',')}]`
}

/**
 * Nearest permitted chunks by cosine distance: exact when the permitted set is small, else iterative HNSW.
 * @param ctx the index being ranked
 * @param t the principal's transaction
 * @param values the query vector
 * @param k how many to return
 * @param filter an optional metadata filter
 */
export async function vectorRanked(
  ctx: RankContext,
  t: Tx,
  values: readonly number[],
  k: number,
  filter?: IndexFilter,
): Promise<Ranked[]> {
  const { table, exactThreshold, filterSql } = ctx
  if (!ctx.vector) {
    throw new SovraError('ERR_BAD_REQUEST', `index ${ctx.name} stores no vectors (vector = false): use mode "text"`)
  }
  const params: unknown[] = [vectorLiteral(ctx, values)]
  const where = `embedding IS NOT NULL AND ${filterSql(filter, params)}`
  const countParams: unknown[] = []
  const counted = await t.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${table} WHERE embedding IS NOT NULL AND ${filterSql(filter, countParams)}
        LIMIT ${String(exactThreshold + 1)}) s`,
    countParams,
  )
  let sql: string
  if ((counted.rows[0]?.n ?? 0) <= exactThreshold) {
    // A MATERIALIZED CTE cannot use the HNSW index: an exact scan over the permitted rows only.
    sql = `WITH permitted AS MATERIALIZED (SELECT id, embedding <=> $1::vector AS d FROM ${table} WHERE ${where})
        SELECT id, 1 - d AS score FROM permitted ORDER BY d, id LIMIT ${String(k)}`
  } else {
    // HNSW filters after the scan: without iterative scans a selective principal gets few or no rows (issue 12).
    // relaxed_order returns rows only roughly by distance, so 4 x k candidates are taken and the outer query
    // re-sorts them (pgvector README, "Iterative Index Scans").
    const candidates = Math.max(40, 4 * k)
    const ef = Math.min(1000, Math.max(ctx.efSearch ?? 100, candidates))
    // The planner underestimates RLS selectivity (array && has a fixed estimate) and picks a sequential scan
    // with a sort, which reads every row; the permitted set is known to be large here, so the index is forced.
    await t.exec(
      `SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = ${String(ef)}; SET LOCAL enable_seqscan = off`,
    )
    sql = `WITH nearest AS MATERIALIZED (SELECT id, embedding <=> $1::vector AS d FROM ${table} WHERE ${where}
          ORDER BY embedding <=> $1::vector LIMIT ${String(candidates)})
        SELECT id, 1 - d AS score FROM nearest ORDER BY d, id LIMIT ${String(k)}`
  }
  return (await t.query<Ranked>(sql, params)).rows
}

/**
 * Permitted chunks matching any of the query's words, best `ts_rank` first.
 * @param ctx the index being ranked
 * @param t the principal's transaction
 * @param text the query text
 * @param k how many to return
 * @param filter an optional metadata filter
 */
export async function textRanked(
  ctx: RankContext,
  t: Tx,
  text: string,
  k: number,
  filter?: IndexFilter,
): Promise<Ranked[]> {
  const q = lexicalQuery(text)
  if (q === undefined) return []
  const params: unknown[] = [q]
  const where = ctx.filterSql(filter, params)
  const { rows } = await t.query<Ranked>(
    `SELECT id, ts_rank(tsv, q) AS score FROM ${ctx.table}, to_tsquery('simple', $1) q
        WHERE tsv @@ q AND ${where} ORDER BY score DESC, id LIMIT ${String(k)}`,
    params,
  )
  return rows
}

/**
 * Fuses rankings by reciprocal rank fusion (score = sum over the rankings of 1 / (RRF_K + rank)), ties by id.
 * @param rankings the rankings to fuse, each best first
 * @param k how many fused results to keep
 */
export function reciprocalRankFusion(rankings: readonly (readonly Ranked[])[], k: number): Ranked[] {
  const fused = new Map<string, number>()
  for (const ranking of rankings) {
    ranking.forEach((r, i) => fused.set(r.id, (fused.get(r.id) ?? 0) + 1 / (RRF_K + i + 1)))
  }
  const ranked = [...fused].map(([id, score]) => ({ id, score }))
  ranked.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
  return ranked.slice(0, k)
}
