import { readFile } from 'node:fs/promises'
import type { InferenceSession, Tensor } from 'onnxruntime-node'

import { SovraError } from '../../../runtime/core/errors.ts'
import type { Engine, EngineClassifyOutput, EngineEmbedOutput, EngineOperation } from '../engine.ts'
import { describeOnnxModel, onnxFiles } from '../onnx-files.ts'
import { loadTokenizer, type Tokenizer } from '../tokenizer.ts'

/** Options of {@link loadOnnxEngine}. */
export interface OnnxEngineOptions {
  /** The .onnx file, or a directory holding `model.onnx` (or `onnx/model.onnx`, the HF Hub export layout). */
  modelPath: string
  /** onnxruntime intra-op threads (one inference uses this many cores). */
  threads: number
  /** Parallel slots the pool may use. */
  slots: number
  /** The most tokens per text, special tokens included (default 512, capped by config max_position_embeddings). */
  maxLength?: number
}

const INPUTS = ['input_ids', 'attention_mask', 'token_type_ids']

async function readConfig(path: string | undefined): Promise<Record<string, unknown>> {
  if (path === undefined) return {}
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>
  } catch (e) {
    throw new SovraError(
      'ERR_CONFIG',
      `model config ${JSON.stringify(path)} is not valid JSON: ${(e as Error).message}`,
    )
  }
}

function positiveInt(name: string, value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value
  throw new SovraError(
    'ERR_CONFIG',
    `onnx engine ${name}: expected a positive integer, received ${JSON.stringify(value)}`,
  )
}

function normalise(v: number[]): number[] {
  const norm = Math.max(Math.sqrt(v.reduce((s, x) => s + x * x, 0)), 1e-12)
  return v.map((x) => x / norm)
}

/** Mean of the rows a [batch, seq, dim] tensor has where the mask is 1 (sentence-transformers mean pooling). */
function meanPool(data: Float32Array, dims: readonly number[], mask: readonly number[]): number[][] {
  const [batch = 0, seq = 0, dim = 0] = dims
  return Array.from({ length: batch }, (_, b) => {
    const sum = new Float64Array(dim)
    let count = 0
    for (let s = 0; s < seq; s++) {
      if (mask[b * seq + s] !== 1) continue
      count++
      const row = data.subarray((b * seq + s) * dim, (b * seq + s + 1) * dim)
      for (let d = 0; d < dim; d++) sum[d] = (sum[d] ?? 0) + (row[d] ?? 0)
    }
    return Array.from(sum, (x) => x / Math.max(count, 1))
  })
}

function softmax(row: Float32Array, labels: string[]): Array<{ label: string; score: number }> {
  const max = Math.max(...row)
  const exp = Array.from(row, (x) => Math.exp(x - max))
  const total = exp.reduce((a, b) => a + b, 0)
  return exp.map((e, i) => ({ label: labels[i] ?? `LABEL_${i}`, score: e / total })).sort((a, b) => b.score - a.score)
}

/**
 * Loads an ONNX encoder (an embedding or sequence-classification export, e.g. all-MiniLM-L6-v2, multilingual-e5,
 * a sentiment classifier) with onnxruntime-node on the CPU. An output named `logits` plus `id2label` in config.json
 * makes it a classifier; otherwise it embeds (mean pooling over the attention mask, then L2 normalisation).
 * tokenizer.json and config.json are read from the model's directory or its parent.
 * @param options the model path, threads, slots and max tokens per text
 * @example
 * const engine = await loadOnnxEngine({ modelPath: 'models/all-MiniLM-L6-v2', threads: 2, slots: 1 })
 * const { vectors } = await engine.embed!(['hello'], AbortSignal.timeout(5000), 0)
 */
export async function loadOnnxEngine(options: OnnxEngineOptions): Promise<Engine> {
  const threads = positiveInt('threads', options.threads)
  const slots = positiveInt('slots', options.slots)
  const files = await onnxFiles(options.modelPath)
  const file = files.model
  // The identity covers what is read: a folder's tokenizer and config change what the model answers.
  const model = await describeOnnxModel(files)
  const tok = files.tokenizer
  if (tok.path === undefined)
    throw new SovraError(
      'ERR_CONFIG',
      `no tokenizer.json for model ${JSON.stringify(file)}; looked in ${tok.tried.join(', ')}`,
    )
  const tokenizer: Tokenizer = await loadTokenizer(tok.path)
  const config = await readConfig(files.config)
  const maxPositions =
    typeof config['max_position_embeddings'] === 'number' ? config['max_position_embeddings'] : Infinity
  const maxLength = positiveInt('maxLength', options.maxLength ?? Math.min(512, maxPositions))
  if (maxLength > maxPositions)
    throw new SovraError(
      'ERR_CONFIG',
      `onnx engine maxLength: expected at most ` +
        `${maxPositions} (max_position_embeddings of ${JSON.stringify(file)}), received ${maxLength}`,
    )
  const specials = tokenizer.encode('', 1024).length
  if (maxLength <= specials)
    throw new SovraError(
      'ERR_CONFIG',
      `onnx engine maxLength: expected more than the ` +
        `${specials} special tokens of ${JSON.stringify(tok.path)}, received ${maxLength}`,
    )

  // Loaded here, not at the top: onnxruntime-node is a heavy native package only pools need.
  const ort = await import('onnxruntime-node')
  let session: InferenceSession
  try {
    session = await ort.InferenceSession.create(file, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionProviders: ['cpu'],
      logSeverityLevel: 3,
    })
  } catch (e) {
    throw new SovraError(
      'ERR_CONFIG',
      `model ${JSON.stringify(file)} cannot be loaded by onnxruntime: ${(e as Error).message}`,
      { cause: e },
    )
  }
  const unknown = session.inputNames.filter((n) => !INPUTS.includes(n))
  if (!session.inputNames.includes('input_ids') || unknown.length > 0) {
    await session.release()
    throw new SovraError(
      'ERR_CONFIG',
      `model ${JSON.stringify(file)} has inputs ${JSON.stringify(session.inputNames)}; ` +
        `supported: input_ids (required), attention_mask, token_type_ids`,
    )
  }
  // Some exports take int32 ids; the metadata says which (missing metadata means the usual int64).
  const int32 = new Set(session.inputMetadata.filter((m) => m.isTensor && m.type === 'int32').map((m) => m.name))
  const id2label = config['id2label'] as Record<string, string> | undefined
  const classify = session.outputNames.includes('logits')
  if (classify && (typeof id2label !== 'object' || id2label === null)) {
    await session.release()
    throw new SovraError(
      'ERR_CONFIG',
      `model ${JSON.stringify(file)} outputs logits but its config.json has no id2label; ` +
        `a classifier needs id2label ({"0": "negative", ...}) next to the model`,
    )
  }
  const labels = Object.entries(id2label ?? {})
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([, l]) => String(l))
  const rank2 = (name: string) =>
    session.outputMetadata.some((m) => m.name === name && (!m.isTensor || m.shape.length !== 3))
  const output = classify
    ? 'logits'
    : (['sentence_embedding', 'pooled_output'].find((n) => session.outputNames.includes(n) && rank2(n)) ??
      (session.outputNames.includes('last_hidden_state') ? 'last_hidden_state' : (session.outputNames[0] ?? '')))

  /** Tokenizes a batch, pads it to its longest text and runs the model once. */
  async function run(texts: string[], signal: AbortSignal): Promise<{ out: Tensor; mask: number[]; tokens: number }> {
    if (!Array.isArray(texts) || texts.length === 0 || texts.some((t) => typeof t !== 'string')) {
      throw new SovraError(
        'ERR_BAD_REQUEST',
        `input: expected a non-empty array of strings, received ${Array.isArray(texts) ? `an array of ${texts.length}` : typeof texts}`,
      )
    }
    signal.throwIfAborted()
    const rows = texts.map((t) => tokenizer.encode(t, maxLength))
    const seq = Math.max(...rows.map((r) => r.length))
    const ids = rows.flatMap((r) => Array.from({ length: seq }, (_, s) => r[s] ?? tokenizer.padId))
    const mask = rows.flatMap((r) => Array.from({ length: seq }, (_, s) => (s < r.length ? 1 : 0)))
    const feeds: Record<string, Tensor> = {}
    const feed = (name: string, values: number[]) => {
      if (!session.inputNames.includes(name)) return
      feeds[name] = int32.has(name)
        ? new ort.Tensor('int32', Int32Array.from(values), [rows.length, seq])
        : new ort.Tensor(
            'int64',
            BigInt64Array.from(values, (v) => BigInt(v)),
            [rows.length, seq],
          )
    }
    feed('input_ids', ids)
    feed('attention_mask', mask)
    feed('token_type_ids', new Array<number>(ids.length).fill(0))
    const result = await session.run(feeds, [output])
    // onnxruntime-node cannot stop a run midway; a caller that gave up meanwhile still gets its abort.
    signal.throwIfAborted()
    const out = result[output]
    if (out === undefined) throw new SovraError('ERR_INTERNAL', `model ${JSON.stringify(file)} returned no ${output}`)
    return { out, mask, tokens: rows.reduce((n, r) => n + r.length, 0) }
  }

  let closed = false
  const operations = new Set<EngineOperation>([classify ? 'classify' : 'embed'])
  const engine: Engine = {
    kind: 'onnx',
    model,
    slots,
    operations,
    async close() {
      // Idempotent: a pool may close on both shutdown and a failed health check.
      if (closed) return
      closed = true
      await session.release()
    },
  }
  if (classify) {
    engine.classify = async (texts, signal, _slot): Promise<EngineClassifyOutput> => {
      const { out, tokens } = await run(texts, signal)
      const n = out.dims[1] ?? 0
      const data = out.data as Float32Array
      return { results: texts.map((_, b) => softmax(data.subarray(b * n, (b + 1) * n), labels)), inputTokens: tokens }
    }
  } else {
    engine.embed = async (texts, signal, _slot): Promise<EngineEmbedOutput> => {
      const { out, mask, tokens } = await run(texts, signal)
      const data = out.data as Float32Array
      const dims = out.dims
      if (dims.length !== 2 && dims.length !== 3)
        throw new SovraError(
          'ERR_CONFIG',
          `model ${JSON.stringify(file)} ` +
            `output ${output} has shape [${dims.join(', ')}]; expected [batch, dim] or [batch, seq, dim]`,
        )
      const dim = dims[1] ?? 0
      const rows =
        dims.length === 3
          ? meanPool(data, dims, mask)
          : texts.map((_, b) => Array.from(data.subarray(b * dim, (b + 1) * dim)))
      return { vectors: rows.map(normalise), inputTokens: tokens }
    }
  }
  return engine
}
