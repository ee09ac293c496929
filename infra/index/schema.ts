import { SovraError } from '../../runtime/core/errors.ts'
import type { Db } from '../../runtime/core/ports.ts'

/** The NOLOGIN role every index read runs as (`SET LOCAL ROLE`), so row-level security applies: superusers and
 * table owners bypass RLS (PostgreSQL docs, "Row Security Policies"). */
export const READER_ROLE = 'sovra_reader'

const NAME = /^[a-z][a-z0-9_]{0,39}$/

/** What one index's tables are made of. */
export interface IndexSchemaOptions {
  /** The index name (`index_name` in config): lowercase letters, digits, `_`; the table is `sovra_index_<name>`. */
  name: string
  /** Vector dimensions (1..16000; pgvector's HNSW indexes at most 2000). */
  dimensions: number
  /** Store vectors (pgvector). `false`: text search only, for a PostgreSQL server without the extension. */
  vector: boolean
}

/**
 * The chunk table of an index.
 * @param name the index name
 */
export function chunkTable(name: string): string {
  if (!NAME.test(name)) {
    throw new SovraError(
      'ERR_CONFIG',
      `index_name ${JSON.stringify(name)} is not valid: expected lowercase letters, digits and _, starting with a letter, at most 40 characters`,
    )
  }
  return `sovra_index_${name}`
}

/**
 * The row-level security predicate: who may read a chunk row. The principal is read from transaction-local
 * settings that the store sets from the verified invocation principal (`set_config(..., true)`); unset settings
 * read as no groups, no subject and clearance -1, so a read without a principal sees nothing (fail closed).
 * A row needs no group in `deny` (deny wins), a tier no higher than the clearance, and a group in `allow` or the
 * subject in `owners`.
 */
const GROUPS =
  "ARRAY(SELECT jsonb_array_elements_text(coalesce(nullif(current_setting('sovra.groups', true), ''), '[]')::jsonb))"
// The same rules as `readDecision` (infra/index/acl.ts), the oracle the leak test checks it against: deny wins over
// everything, owners included; the clearance must reach the tier, owners included; then a group in `allow` or the
// subject in `owners` grants (the binding passes no subject for the anonymous caller, so it is never an owner).
const POLICY = `
  NOT deny_groups && ${GROUPS}
  AND tier_rank <= coalesce(nullif(current_setting('sovra.clearance_rank', true), '')::int, -1)
  AND (
    allow_groups && ${GROUPS}
    OR owners && ARRAY[nullif(current_setting('sovra.subject', true), '')]
  )`

/**
 * Whether the connected PostgreSQL can store vectors: the pgvector extension is installed, or available to install.
 * @param db the SQL store
 */
export async function hasPgvector(db: Pick<Db, 'query'>): Promise<boolean> {
  const { rows } = await db.query("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
  return rows.length > 0
}

/**
 * Creates (idempotently) the tables, indexes, reader role and row-level security policy of one index: one row per
 * chunk with its document key (bucket, key, etag), ordinal, text, metadata, ACL (allow, deny, tier rank, owners),
 * content hash, embedding model digest, tsvector (GIN) and, with `vector`, a pgvector column with an HNSW cosine
 * index. The HNSW index is created on the empty table and grows with each insert: building it afterwards over a
 * large table takes minutes in PGlite (FACTS.md).
 * @param db the SQL store, connected as a role that may create roles and tables (the PGlite user; a superuser or
 *   a role with CREATEROLE on a server)
 * @param options name, dimensions, vector
 * @example
 * await ensureIndexSchema(db, { name: 'policies', dimensions: 384, vector: true })
 */
export async function ensureIndexSchema(db: Db, options: IndexSchemaOptions): Promise<void> {
  const table = chunkTable(options.name)
  const { dimensions } = options
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > 2000) {
    throw new SovraError(
      'ERR_CONFIG',
      `index ${options.name}: dimensions ${String(dimensions)} is not valid: expected an integer from 1 to 2000 (pgvector's HNSW limit)`,
    )
  }
  if (options.vector) {
    if (!(await hasPgvector(db))) {
      throw new SovraError(
        'ERR_CONFIG',
        `index ${options.name} needs the PostgreSQL extension "vector" (pgvector), which this server does not have (pg_available_extensions lists no "vector"): install pgvector on the server, or use the embedded store; text search works without it`,
      )
    }
    await db.exec('CREATE EXTENSION IF NOT EXISTS vector')
  }
  // Roles are cluster-wide and two processes may create it at once: a lost race is not an error.
  await db.exec(`DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${READER_ROLE}') THEN CREATE ROLE ${READER_ROLE} NOLOGIN; END IF;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`)
  await db.exec(`
    CREATE TABLE IF NOT EXISTS ${table} (
      id text PRIMARY KEY,
      bucket text NOT NULL DEFAULT '',
      key text NOT NULL DEFAULT '',
      etag text NOT NULL DEFAULT '',
      ordinal int NOT NULL DEFAULT 0,
      text text NOT NULL DEFAULT '',
      metadata jsonb NOT NULL DEFAULT '{}',
      allow_groups text[] NOT NULL DEFAULT '{}',
      deny_groups text[] NOT NULL DEFAULT '{}',
      tier_rank int NOT NULL DEFAULT 0,
      owners text[] NOT NULL DEFAULT '{}',
      content_sha256 text NOT NULL DEFAULT '',
      model_digest text NOT NULL DEFAULT '',
      tsv tsvector NOT NULL${options.vector ? `,\n      embedding vector(${dimensions})` : ''}
    );
    CREATE INDEX IF NOT EXISTS ${table}_doc ON ${table} (bucket, key);
    CREATE INDEX IF NOT EXISTS ${table}_tsv ON ${table} USING gin (tsv);
    ${options.vector ? `CREATE INDEX IF NOT EXISTS ${table}_hnsw ON ${table} USING hnsw (embedding vector_cosine_ops);` : ''}
    ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY;
    DROP POLICY IF EXISTS ${table}_read ON ${table};
    CREATE POLICY ${table}_read ON ${table} FOR SELECT TO ${READER_ROLE} USING (${POLICY});
    GRANT SELECT ON ${table} TO ${READER_ROLE};
  `)
  if (options.vector) {
    // CREATE TABLE IF NOT EXISTS keeps an older table as it is: a different dimension must not pass silently.
    const { rows } = await db.query<{ dims: number }>(
      "SELECT atttypmod AS dims FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'embedding'",
      [table],
    )
    const dims = rows[0]?.dims
    if (dims !== dimensions) {
      throw new SovraError(
        'ERR_CONFIG',
        `index ${options.name}: the stored table ${table} has ${dims === undefined ? 'no vector column' : `${String(dims)} dimensions`}, the config asks for ${String(dimensions)}: reindex into a new index_name`,
      )
    }
  }
  // The reader needs the schema the table is in (a server's per-tenant schema is not public).
  await db.exec(`DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO ${READER_ROLE}', current_schema()); END $$`)
}
