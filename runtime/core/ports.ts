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
  /** The pool alias (or pool name) to use; optional when one pool serves the operation. */
  model?: string
  /** Tier of the data in the request; defaults to the calling function's tier. */
  tier?: string
  /** Workload class; default `interactive`. Batch work queues behind interactive work in a shared pool. */
  class?: 'interactive' | 'batch'
  /** Give up after this many milliseconds (default: the function's timeout). */
  deadline_ms?: number
  /** Why this data may leave the premises; required for external providers. */
  legal_basis?: string
}

/**
 * A schema for structured output: a JSON Schema object, or a Standard Schema (a valibot schema) that is converted to
 * JSON Schema for the grammar and validates the result.
 */
export type OutputSchema<T = unknown> =
  | Record<string, unknown>
  | {
      readonly '~standard': {
        readonly validate: (value: unknown) => unknown
        readonly types?: { readonly output: T } | undefined
      }
    }

/** Chat completion request. */
export interface ChatRequest<T = unknown> extends InferenceOptions {
  messages: ChatMessage[]
  max_tokens?: number
  temperature?: number
  top_p?: number
  seed?: number
  /** Structured output: the answer must satisfy this schema (enforced by a grammar where the engine can). */
  schema?: OutputSchema<T>
}

/** Where and how an inference call ran: every call returns it. */
export interface InferenceInfo {
  pool: string
  replica: string
  /** The model name the replica reports. */
  model: string
  /** sha256 of the model file that answered (`external:<url>#<model>` for external providers). */
  model_digest: string
  tier: string
  class: 'interactive' | 'batch'
  usage: { input_tokens: number; output_tokens: number }
  timings: { queue_ms: number; ttft_ms?: number; total_ms: number; attempts: number }
}

/** Chat completion result; `json` is the parsed, validated output when a schema was given. */
export interface ChatResult<T = unknown> extends InferenceInfo {
  text: string
  json?: T
  finish_reason: 'stop' | 'length'
}

/** Embeddings, one per input, in input order. */
export interface EmbedResult extends InferenceInfo {
  vectors: number[][]
}

/** Label scores per input, highest first. */
export interface ClassifyResult extends InferenceInfo {
  results: Array<Array<{ label: string; score: number }>>
}

/** Embedding request: one or several texts. */
export interface EmbedRequest extends InferenceOptions {
  input: string | string[]
}

/** Classification request: one or several texts. */
export interface ClassifyRequest extends InferenceOptions {
  input: string | string[]
}

/** Inference through the pools (`env.AI`). */
export interface Ai {
  chat<T = unknown>(request: ChatRequest<T>): Promise<ChatResult<T>>
  embed(request: EmbedRequest): Promise<EmbedResult>
  classify(request: ClassifyRequest): Promise<ClassifyResult>
}

/**
 * The operations of the AI service with their request and result types. On the host side a chat request's
 * `schema` is a JSON Schema (the isolate converted a valibot schema before sending it).
 */
export interface AiOperations {
  chat: { request: ChatRequest & { schema?: Record<string, unknown> }; result: ChatResult }
  embed: { request: EmbedRequest; result: EmbedResult }
  classify: { request: ClassifyRequest; result: ClassifyResult }
}

/** One AI operation's name. */
export type AiOp = keyof AiOperations

/** Who is calling the AI service: the function and its tier (the default tier of its requests). */
export interface AiCaller {
  function: string
  tier: string
  /** The function's timeout: the default deadline of its calls. */
  timeoutMs: number
  /** The invocation that made the call, when the host knows it: the `ai call` log line names it. */
  invocationId?: string | undefined
}

/** The host side of `env.AI`: routes a call to a pool replica (implemented by infra/pools). */
export interface AiService {
  call<K extends AiOp>(op: K, request: AiOperations[K]['request'], caller: AiCaller): Promise<AiOperations[K]['result']>
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
