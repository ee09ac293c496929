/**
 * The engine contract a pool replica serves through: one loaded model, a fixed number of parallel slots, and the
 * operations the model supports. Engines are loaded lazily (node-llama-cpp and onnxruntime-node are heavy native
 * packages and load only inside infra/pools).
 */

/** The model file a replica serves, identified by content. */
export interface ModelInfo {
  /** Absolute path of the file or folder that was loaded (or the URL of an external provider). */
  path: string
  /**
   * Lowercase hex sha256 of the file (of a folder: of its files' listing), computed at load; `external:<url>` for
   * external providers.
   */
  sha256: string
  /** File size in bytes (0 for external providers). */
  bytes: number
  /** A short display name (file name without extension, or the provider's model name). */
  name: string
  /**
   * For a model folder: the files read from it (path relative to the folder), each with its size and sha256; `sha256`
   * above is then the digest of their listing (see describeModelFolder in model-file.ts).
   */
  files?: Array<{ path: string; bytes: number; sha256: string }>
}

/** One message of a chat, OpenAI-shaped. */
export interface EngineChatMessage {
  role: 'system' | 'user' | 'assistant'
  content: string
}

/** What a chat completion asks an engine for. */
export interface EngineChatParams {
  messages: EngineChatMessage[]
  maxTokens: number
  /**
   * The prompt and `maxTokens` must fit the model's context, or the engine refuses with 400 ERR_BAD_REQUEST naming
   * both counts (never truncating the prompt). When true (the caller gave no max_tokens; `maxTokens` is the pool's
   * default), the engine lowers `maxTokens` to the room the prompt leaves instead, and refuses only a prompt that
   * leaves none.
   */
  fitMaxTokens?: boolean
  temperature: number
  seed?: number
  topP?: number
  /** A JSON Schema the output must satisfy; enforced by a grammar where the engine can. */
  jsonSchema?: Record<string, unknown>
  signal: AbortSignal
  /** Called with each piece of generated text as it is produced (streaming). */
  onText?: (chunk: string) => void
  /** Called when tokens are generated (cheaper than onText: no detokenizing); used for time to first token. */
  onToken?: () => void
  /** Extra body fields forwarded as-is (external engines only). */
  extra?: Record<string, unknown>
}

/** What a chat completion produced. */
export interface EngineChatOutput {
  text: string
  /** `length` when max tokens (or the context) cut it short. */
  finishReason: 'stop' | 'length'
  inputTokens: number
  outputTokens: number
}

/** Embedding vectors, one per input, in input order. */
export interface EngineEmbedOutput {
  vectors: number[][]
  inputTokens: number
}

/** Label scores per input (softmax over the model's labels), highest first. */
export interface EngineClassifyOutput {
  results: Array<Array<{ label: string; score: number }>>
  inputTokens: number
}

/** An operation an engine may support. */
export type EngineOperation = 'chat' | 'embed' | 'classify'

/** A loaded model with N parallel slots. `slot` arguments are 0..slots-1 and never used by two calls at once. */
export interface Engine {
  readonly kind: 'llama' | 'onnx' | 'external'
  readonly model: ModelInfo
  readonly slots: number
  readonly operations: ReadonlySet<EngineOperation>
  chat?(params: EngineChatParams, slot: number): Promise<EngineChatOutput>
  embed?(texts: string[], signal: AbortSignal, slot: number): Promise<EngineEmbedOutput>
  classify?(texts: string[], signal: AbortSignal, slot: number): Promise<EngineClassifyOutput>
  /** Frees the model and native memory. */
  close(): Promise<void>
}
