import { createHash } from 'node:crypto'
import { SovraError } from '../../runtime/core/errors.ts'
import type { Db } from '../../runtime/core/ports.ts'
import { filterCompiler, type IndexFilter } from './filter.ts'
import {
  type RankContext,
  type Ranked,
  type Tx,
  reciprocalRankFusion,
  textRanked,
  vectorLiteral,
  vectorRanked,
} from './rank.ts'
import { READER_ROLE, chunkTable, ensureIndexSchema } from './schema.ts'
import { lexicalDocument } from './segment.ts'

export type { IndexFilter } from './filter.ts'
export { RRF_K } from './rank.ts'

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

const COLUMNS = 'id, text, metadata, bucket, key, etag, ordinal'

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
  const ctx: RankContext = {
    name: options.name,
    dimensions: options.dimensions,
    vector: options.vector,
    table,
    exactThreshold: options.exactThreshold ?? 2000,
    efSearch: options.efSearch,
    filterSql: filterCompiler(options.name, options.filterFields),
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

  /** Reads the ranked ids' rows (still under RLS) in rank order. */
  const hydrate = async (t: Tx, ranked: readonly Ranked[]): Promise<IndexMatches> => {
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
        embedding: options.vector ? vectorLiteral(ctx, c.values) : null,
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
      return asPrincipal(opts.principal, async (t) => hydrate(t, await vectorRanked(ctx, t, values, k, opts.filter)))
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
        if (!useText) return hydrate(t, await vectorRanked(ctx, t, opts.vector ?? [], k, opts.filter))
        if (!useVector) return hydrate(t, await textRanked(ctx, t, opts.text ?? '', k, opts.filter))
        const n = Math.max(40, 4 * k)
        const rankings = [
          await vectorRanked(ctx, t, opts.vector ?? [], n, opts.filter),
          await textRanked(ctx, t, opts.text ?? '', n, opts.filter),
        ]
        return hydrate(t, reciprocalRankFusion(rankings, k))
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
