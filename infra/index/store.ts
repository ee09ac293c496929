import { createHash } from 'node:crypto'
import { SovraError } from '../../runtime/core/errors.ts'
import type { Db } from '../../runtime/core/ports.ts'
import { READER_ROLE, chunkTable, ensureIndexSchema } from './schema.ts'
import { lexicalDocument, lexicalQuery } from './segment.ts'

type Tx = Pick<Db, 'query' | 'exec'>

/** Who reads: the invocation's verified principal, set by the binding, never by the function. */
export interface IndexPrincipal {
  subject: string
  groups: readonly string[]
  /** The rank of the principal's clearance tier (higher reads more). */
  clearanceRank: number
}

/** A document's access rules, inherited by each of its chunks. */
export interface ChunkAcl {
  allow: readonly string[]
  deny?: readonly string[]
  /** The rank of the document's tier: readable with clearance rank >= this. */
  tierRank: number
  owners?: readonly string[]
}

/** One chunk to store (`values` is Cloudflare Vectorize's name for the vector). */
export interface IndexChunk {
  id: string
  text: string
  values?: readonly number[]
  metadata?: Record<string, unknown>
  bucket?: string
  key?: string
  etag?: string
  ordinal?: number
  acl: ChunkAcl
  /** Defaults to the SHA-256 of `text`. */
  contentSha256?: string
  modelDigest?: string
}

/** A metadata equality (or `$in`) filter; it can only narrow what RLS already permits. */
export type IndexFilter = Record<string, string | number | boolean | { $in: readonly (string | number | boolean)[] }>

/** A returned chunk with its score (cosine similarity, `ts_rank`, or the fused RRF score). */
export interface IndexMatch {
  id: string
  score: number
  text: string
  metadata: Record<string, unknown>
  bucket: string
  key: string
  etag: string
  ordinal: number
}

/** Vectorize's result shape. */
export interface IndexMatches {
  matches: IndexMatch[]
  count: number
}

/** How the store is built. */
export interface IndexStoreOptions {
  name: string
  dimensions: number
  vector: boolean
  /** Metadata keys a `filter` may name, besides `bucket`, `key` and `etag`. */
  filterFields?: readonly string[]
  /** Permitted sets up to this size are searched exactly, without the HNSW index (default 2,000). */
  exactThreshold?: number
  /** HNSW candidate list (`hnsw.ef_search`), at least 2 x topK; default 100. */
  efSearch?: number
}

/** The reciprocal rank fusion constant (Cormack et al., SIGIR 2009). */
export const RRF_K = 60
const COLUMNS = 'id, text, metadata, bucket, key, etag, ordinal'
const COLUMN_FILTERS = ['bucket', 'key', 'etag']

/**
 * Creates the storage of env.INDEX: chunks with ACLs in the SQL store, read only through row-level security as the
 * given principal, with vector (pgvector HNSW, or exact over a small permitted set), text and hybrid search.
 * @param db the SQL store (PGlite, or a PostgreSQL server)
 * @param options name, dimensions, vector, filterable metadata fields, planner thresholds
 * @example
 * const index = await indexStore(db, { name: 'policies', dimensions: 384, vector: true })
 * await index.search({ text: '育児休業の申請期限は？', vector, topK: 5, mode: 'hybrid', principal })
 */
export async function indexStore(db: Db, options: IndexStoreOptions) {
  await ensureIndexSchema(db, options)
  const table = chunkTable(options.name)
  const exactThreshold = options.exactThreshold ?? 2000
  const fields = new Set([...COLUMN_FILTERS, ...(options.filterFields ?? [])])

  const vectorLiteral = (values: readonly number[] | undefined): string => {
    if (values?.length !== options.dimensions || !values.every(Number.isFinite)) {
      throw new SovraError(
        'ERR_BAD_REQUEST',
        `index ${options.name}: expected a vector of ${String(options.dimensions)} finite numbers, received ${values === undefined ? 'none' : `${String(values.length)} values`}`,
      )
    }
    return `[${values.join(',')}]`
  }

  const filterSql = (filter: IndexFilter | undefined, params: unknown[]): string => {
    const terms: string[] = []
    for (const [field, want] of Object.entries(filter ?? {})) {
      if (!fields.has(field)) {
        throw new SovraError(
          'ERR_BAD_REQUEST',
          `index ${options.name}: filter field ${JSON.stringify(field)} is not filterable; valid fields: ${[...fields].join(', ')}`,
        )
      }
      const column = COLUMN_FILTERS.includes(field) ? field : `metadata->>${sqlString(field)}`
      if (typeof want === 'object') {
        params.push(want.$in.map(String))
        terms.push(`${column} = ANY($${String(params.length)}::text[])`)
      } else {
        params.push(String(want))
        terms.push(`${column} = $${String(params.length)}`)
      }
    }
    return terms.length === 0 ? 'true' : terms.join(' AND ')
  }

  /** Runs `fn` in a transaction as the reader role with the principal set, so RLS scopes every row it reads. */
  const asPrincipal = <T>(principal: IndexPrincipal, fn: (t: Tx) => Promise<T>): Promise<T> => {
    if (!Number.isInteger(principal.clearanceRank) || typeof principal.subject !== 'string') {
      throw new SovraError('ERR_BAD_REQUEST', 'index read: the principal needs a subject and an integer clearanceRank')
    }
    return db.tx(async (t) => {
      await t.query(
        "SELECT set_config('sovra.subject', $1, true), set_config('sovra.groups', $2, true), set_config('sovra.clearance_rank', $3, true)",
        [principal.subject, JSON.stringify(principal.groups), String(principal.clearanceRank)],
      )
      await t.exec(`SET LOCAL ROLE ${READER_ROLE}`)
      return fn(t)
    })
  }

  /** Nearest permitted chunks by cosine distance: exact when the permitted set is small, else iterative HNSW. */
  const vectorRanked = async (t: Tx, values: readonly number[], k: number, filter?: IndexFilter) => {
    if (!options.vector) {
      throw new SovraError(
        'ERR_BAD_REQUEST',
        `index ${options.name} stores no vectors (vector = false): use mode "text"`,
      )
    }
    const params: unknown[] = [vectorLiteral(values)]
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
      const ef = Math.min(1000, Math.max(options.efSearch ?? 100, candidates))
      // The planner underestimates RLS selectivity (array && has a fixed estimate) and picks a sequential scan
      // with a sort, which reads every row; the permitted set is known to be large here, so the index is forced.
      await t.exec(
        `SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = ${String(ef)}; SET LOCAL enable_seqscan = off`,
      )
      sql = `WITH nearest AS MATERIALIZED (SELECT id, embedding <=> $1::vector AS d FROM ${table} WHERE ${where}
          ORDER BY embedding <=> $1::vector LIMIT ${String(candidates)})
        SELECT id, 1 - d AS score FROM nearest ORDER BY d, id LIMIT ${String(k)}`
    }
    return (await t.query<{ id: string; score: number }>(sql, params)).rows
  }

  /** Permitted chunks matching any of the query's words, best `ts_rank` first. */
  const textRanked = async (t: Tx, text: string, k: number, filter?: IndexFilter) => {
    const q = lexicalQuery(text)
    if (q === undefined) return []
    const params: unknown[] = [q]
    const where = filterSql(filter, params)
    const { rows } = await t.query<{ id: string; score: number }>(
      `SELECT id, ts_rank(tsv, q) AS score FROM ${table}, to_tsquery('simple', $1) q
        WHERE tsv @@ q AND ${where} ORDER BY score DESC, id LIMIT ${String(k)}`,
      params,
    )
    return rows
  }

  /** Reads the ranked ids' rows (still under RLS) in rank order. */
  const hydrate = async (t: Tx, ranked: readonly { id: string; score: number }[]): Promise<IndexMatches> => {
    const { rows } = await t.query<Omit<IndexMatch, 'score'>>(`SELECT ${COLUMNS} FROM ${table} WHERE id = ANY($1)`, [
      ranked.map((r) => r.id),
    ])
    const byId = new Map(rows.map((r) => [r.id, r]))
    const matches = ranked.flatMap((r) => {
      const row = byId.get(r.id)
      return row === undefined ? [] : [{ ...row, score: Number(r.score) }]
    })
    return { matches, count: matches.length }
  }

  const checkTopK = (topK: number | undefined): number => {
    const k = topK ?? 10
    if (!Number.isInteger(k) || k < 1 || k > 100) {
      throw new SovraError('ERR_BAD_REQUEST', `topK ${String(topK)} is not valid: expected an integer from 1 to 100`)
    }
    return k
  }

  return {
    /** Inserts or replaces chunks by id (the writer's role: the indexer, not a function). */
    async upsert(chunks: readonly IndexChunk[]): Promise<{ count: number; ids: string[] }> {
      const byId = new Map(chunks.map((c) => [c.id, c]))
      const rows = [...byId.values()].map((c) => ({
        id: c.id,
        bucket: c.bucket ?? '',
        key: c.key ?? '',
        etag: c.etag ?? '',
        ordinal: c.ordinal ?? 0,
        text: c.text,
        metadata: c.metadata ?? {},
        allow_groups: c.acl.allow,
        deny_groups: c.acl.deny ?? [],
        tier_rank: c.acl.tierRank,
        owners: c.acl.owners ?? [],
        content_sha256: c.contentSha256 ?? createHash('sha256').update(c.text).digest('hex'),
        model_digest: c.modelDigest ?? '',
        lex: lexicalDocument(c.text),
        embedding: options.vector ? vectorLiteral(c.values) : null,
      }))
      const names = Object.keys(rows[0] ?? {}).filter((n) => n !== 'lex' && (options.vector || n !== 'embedding'))
      for (let i = 0; i < rows.length; i += 500) {
        await db.query(
          `INSERT INTO ${table} (${names.join(', ')}, tsv)
          SELECT ${names.map((n) => (n === 'embedding' ? 'embedding::vector' : n)).join(', ')}, to_tsvector('simple', lex)
          FROM jsonb_to_recordset($1::jsonb) AS x(id text, bucket text, key text, etag text, ordinal int, text text,
            metadata jsonb, allow_groups text[], deny_groups text[], tier_rank int, owners text[], content_sha256 text,
            model_digest text, lex text, embedding text)
          ON CONFLICT (id) DO UPDATE SET ${[...names, 'tsv'].map((n) => `${n} = excluded.${n}`).join(', ')}`,
          [JSON.stringify(rows.slice(i, i + 500))],
        )
      }
      return { count: rows.length, ids: [...byId.keys()] }
    },

    /** Replaces the ACL of every chunk of one document, without re-embedding; takes effect on the next read. */
    async updateAcl(bucket: string, key: string, acl: ChunkAcl): Promise<{ count: number }> {
      const r = await db.query(
        `UPDATE ${table} SET allow_groups = $3, deny_groups = $4, tier_rank = $5, owners = $6 WHERE bucket = $1 AND key = $2`,
        [bucket, key, acl.allow, acl.deny ?? [], acl.tierRank, acl.owners ?? []],
      )
      return { count: r.rowCount }
    },

    /** Deletes chunks by id. */
    async deleteByIds(ids: readonly string[]): Promise<{ count: number }> {
      const r = await db.query(`DELETE FROM ${table} WHERE id = ANY($1)`, [[...ids]])
      return { count: r.rowCount }
    },

    /** The chunks with these ids that the principal may read. */
    getByIds(ids: readonly string[], principal: IndexPrincipal): Promise<Omit<IndexMatch, 'score'>[]> {
      return asPrincipal(principal, async (t) => {
        const r = await t.query<Omit<IndexMatch, 'score'>>(
          `SELECT ${COLUMNS} FROM ${table} WHERE id = ANY($1) ORDER BY id`,
          [[...ids]],
        )
        return r.rows
      })
    },

    /** Vectorize's `query`: the topK nearest chunks the principal may read. */
    query(
      values: readonly number[],
      opts: { topK?: number; filter?: IndexFilter; principal: IndexPrincipal },
    ): Promise<IndexMatches> {
      const k = checkTopK(opts.topK)
      return asPrincipal(opts.principal, async (t) => hydrate(t, await vectorRanked(t, values, k, opts.filter)))
    },

    /**
     * Vector, text or hybrid search. Hybrid fuses the two rankings by reciprocal rank fusion (score = sum over the
     * rankings of 1 / (60 + rank)), each ranking taking 4 x topK candidates (at least 40); with only text or only
     * a vector it is that search alone.
     */
    search(opts: {
      text?: string
      vector?: readonly number[]
      topK?: number
      filter?: IndexFilter
      mode?: 'hybrid' | 'vector' | 'text'
      principal: IndexPrincipal
    }): Promise<IndexMatches> {
      const k = checkTopK(opts.topK)
      const mode = opts.mode ?? 'hybrid'
      const useText = mode !== 'vector' && opts.text !== undefined
      const useVector = mode !== 'text' && opts.vector !== undefined && (options.vector || mode === 'vector')
      if (!useText && !useVector) {
        throw new SovraError(
          'ERR_BAD_REQUEST',
          `search mode "${mode}" needs ${mode === 'hybrid' ? 'text or a vector' : mode === 'text' ? 'text' : 'a vector'}`,
        )
      }
      return asPrincipal(opts.principal, async (t) => {
        if (!useText) return hydrate(t, await vectorRanked(t, opts.vector ?? [], k, opts.filter))
        if (!useVector) return hydrate(t, await textRanked(t, opts.text ?? '', k, opts.filter))
        const n = Math.max(40, 4 * k)
        const fused = new Map<string, number>()
        for (const ranking of [
          await vectorRanked(t, opts.vector ?? [], n, opts.filter),
          await textRanked(t, opts.text ?? '', n, opts.filter),
        ]) {
          ranking.forEach((r, i) => fused.set(r.id, (fused.get(r.id) ?? 0) + 1 / (RRF_K + i + 1)))
        }
        const ranked = [...fused].map(([id, score]) => ({ id, score }))
        ranked.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
        return hydrate(t, ranked.slice(0, k))
      })
    },

    /** The index's shape and size (all chunks: an admin view, not scoped to a principal). */
    async describe() {
      const r = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)
      return {
        name: options.name,
        dimensions: options.dimensions,
        metric: 'cosine' as const,
        vectorSearch: options.vector,
        vectorCount: r.rows[0]?.n ?? 0,
      }
    },
  }
}

/** The type of an index store. */
export type IndexStore = Awaited<ReturnType<typeof indexStore>>

/** A SQL string literal (for a metadata key, already checked against the whitelist). */
function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`
}
