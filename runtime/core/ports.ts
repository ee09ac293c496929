/**
 * Port interfaces: what functions and the runtime need from the world, implemented by infra/* adapters.
 * Shapes follow Cloudflare's R2 / Vectorize / Workers AI bindings where those exist, so Worker code ports over.
 */

/** Metadata of a stored object (the shape of Cloudflare's R2Object). */
export interface BucketObject {
  readonly key: string
  readonly size: number
  /** MD5 hex of the body for single-part uploads, as S3 computes it (no quotes). */
  readonly etag: string
  /** The etag in quotes, as HTTP sends it. */
  readonly httpEtag: string
  readonly uploaded: Date
  readonly httpMetadata: { readonly contentType?: string }
  readonly customMetadata: Readonly<Record<string, string>>
  /** The store's version id, when versioning is on. */
  readonly version: string | undefined
}

/** A stored object with its body (R2ObjectBody). The body can be read once. */
export interface BucketObjectBody extends BucketObject {
  readonly body: ReadableStream<Uint8Array>
  readonly bodyUsed: boolean
  text(): Promise<string>
  json<T = unknown>(): Promise<T>
  arrayBuffer(): Promise<ArrayBuffer>
}

/** Options for {@link Bucket.put} (R2's names; `contentType` is accepted as a shorthand). */
export interface BucketPutOptions {
  httpMetadata?: { contentType?: string }
  contentType?: string
  customMetadata?: Record<string, string>
}

/** Options for {@link Bucket.list}. */
export interface BucketListOptions {
  prefix?: string
  delimiter?: string
  /** At most this many keys (1-1000, default 1000). */
  limit?: number
  cursor?: string
}

/** One page of {@link Bucket.list}. */
export interface BucketListResult {
  readonly objects: readonly BucketObject[]
  /** Common prefixes when a delimiter was given. */
  readonly delimitedPrefixes: readonly string[]
  readonly truncated: boolean
  readonly cursor: string | undefined
}

/** A value {@link Bucket.put} takes. */
export type BucketPutValue = string | ArrayBuffer | Uint8Array | ReadableStream<Uint8Array> | null

/** An object store with S3 semantics (fs adapter embedded, S3/MinIO in a cluster); R2's binding API. */
export interface Bucket {
  get(key: string): Promise<BucketObjectBody | null>
  head(key: string): Promise<BucketObject | null>
  put(key: string, value: BucketPutValue, options?: BucketPutOptions): Promise<BucketObject>
  list(options?: BucketListOptions): Promise<BucketListResult>
  delete(keys: string | readonly string[]): Promise<void>
}

/** The result of a SQL query. */
export interface QueryResult<TRow = Record<string, unknown>> {
  readonly rows: TRow[]
  readonly rowCount: number
}

/** A SQL store in the PostgreSQL dialect (PGlite embedded, a PostgreSQL server in a cluster). */
export interface Db {
  query<TRow = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<TRow>>
  /** Runs several statements without parameters (migrations). */
  exec(sql: string): Promise<void>
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  tx<T>(fn: (db: Pick<Db, 'query' | 'exec'>) => Promise<T>): Promise<T>
  close(): Promise<void>
}

/** A chat message (OpenAI shape). */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant'
  content: string
}

/** Fields every inference request carries for routing and admission. */
export interface InferenceOptions {
  /** Tier of the data in the request; defaults to the calling function's tier. */
  tier?: string
  class?: 'interactive' | 'batch'
  /** Give up after this many milliseconds. */
  deadline_ms?: number
  /** Required for external providers. */
  legal_basis?: string
  signal?: AbortSignal
}

/** Chat completion request. */
export interface ChatRequest extends InferenceOptions {
  model: string
  messages: ChatMessage[]
  max_tokens?: number
  temperature?: number
  seed?: number
  /** JSON Schema the output must satisfy (enforced by a grammar where the engine can). */
  json_schema?: Record<string, unknown>
}

/** Chat completion result. */
export interface ChatResult {
  text: string
  finish_reason: 'stop' | 'length' | 'error'
  usage: { prompt_tokens: number; completion_tokens: number }
  model: string
  /** sha256 of the model file that answered. */
  model_digest: string
  pool: string
}

/** Inference through the pools (env.AI). */
export interface Ai {
  chat(request: ChatRequest): Promise<ChatResult>
  embed(request: { model: string; input: string[] } & InferenceOptions): Promise<{ vectors: number[][]; model_digest: string }>
  classify(request: { model: string; input: string[] } & InferenceOptions): Promise<{ labels: Array<Record<string, number>>; model_digest: string }>
}

/** A vector to store, with its ACL. */
export interface IndexVector {
  id: string
  values: number[]
  metadata?: Record<string, string | number | boolean>
  /** Groups allowed to see it; empty means nobody but admins. */
  acl?: string[]
}

/** A vector index with document-level ACLs (pgvector). */
export interface Index {
  upsert(vectors: IndexVector[]): Promise<{ count: number }>
  query(
    vector: number[],
    options: { topK?: number; filter?: Record<string, unknown>; principal: { groups: readonly string[] } },
  ): Promise<{ matches: Array<{ id: string; score: number; metadata: Record<string, unknown> }> }>
  deleteByIds(ids: string[]): Promise<{ count: number }>
}
