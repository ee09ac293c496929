import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { mulberry32 } from './prng.ts'

/**
 * Writes a tiny llama-architecture GGUF (v3) with random F32 weights and a byte-fallback SentencePiece vocabulary:
 * enough for node-llama-cpp to load, tokenize any UTF-8 text, chat and follow JSON-schema grammars, in well under a
 * megabyte. It answers gibberish: it exists so tests and `npm start` exercise the real engine without downloading
 * weights. Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md (and docs/platform-notes.md for what llama.cpp
 * requires: a missing feed_forward_length or head_count aborts the process).
 */

const GGUF_TYPE = { u32: 4, f32: 6, string: 8, array: 9 } as const
const GGML_F32 = 0
const ALIGN = 32

/** Shape of the tiny model; the defaults make a ~0.6 MB file. */
export interface TinyLlamaOptions {
  embedding?: number
  layers?: number
  heads?: number
  feedForward?: number
  contextLength?: number
  seed?: number
  /** Metadata keys to leave out (tests write malformed models with it). */
  omitKeys?: readonly string[]
}

/** Common word pieces, so English and some Japanese text tokenize into more than raw bytes. */
const PIECES = [
  '▁the',
  '▁a',
  '▁of',
  '▁and',
  '▁to',
  '▁in',
  '▁is',
  '▁for',
  '▁on',
  '▁with',
  '▁report',
  '▁risk',
  '▁bank',
  '▁loan',
  '▁data',
  '▁model',
  '▁yes',
  '▁no',
  '▁true',
  '▁false',
  '▁answer',
  '▁question',
  '▁policy',
  '▁audit',
  '▁month',
  '▁end',
  '▁user',
  '▁system',
  '▁assistant',
  '▁hello',
  '▁world',
  'ing',
  'ed',
  'er',
  's',
  '.',
  ',',
  '?',
  '!',
  ':',
  '"',
  '{',
  '}',
  '[',
  ']',
  '▁',
  '銀行',
  'リスク',
  '報告',
  'です',
  'ます',
  'は',
  'の',
  'を',
]

class Writer {
  private readonly parts: Buffer[] = []
  size = 0
  push(b: Buffer): void {
    this.parts.push(b)
    this.size += b.length
  }
  u32(n: number): void {
    const b = Buffer.alloc(4)
    b.writeUInt32LE(n)
    this.push(b)
  }
  u64(n: number): void {
    const b = Buffer.alloc(8)
    b.writeBigUInt64LE(BigInt(n))
    this.push(b)
  }
  f32(n: number): void {
    const b = Buffer.alloc(4)
    b.writeFloatLE(n)
    this.push(b)
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8')
    this.u64(b.length)
    this.push(b)
  }
  pad(): void {
    const rest = this.size % ALIGN
    if (rest !== 0) this.push(Buffer.alloc(ALIGN - rest))
  }
  buffer(): Buffer {
    return Buffer.concat(this.parts)
  }
}

type Kv =
  | [string, 'u32', number]
  | [string, 'f32', number]
  | [string, 'string', string]
  | [string, 'strings', string[]]
  | [string, 'f32s', number[]]
  | [string, 'i32s', number[]]

function writeKv(w: Writer, [key, type, value]: Kv): void {
  w.str(key)
  switch (type) {
    case 'u32':
      w.u32(GGUF_TYPE.u32)
      w.u32(value)
      break
    case 'f32':
      w.u32(GGUF_TYPE.f32)
      w.f32(value)
      break
    case 'string':
      w.u32(GGUF_TYPE.string)
      w.str(value)
      break
    case 'strings':
      w.u32(GGUF_TYPE.array)
      w.u32(GGUF_TYPE.string)
      w.u64(value.length)
      for (const s of value) w.str(s)
      break
    case 'f32s':
      w.u32(GGUF_TYPE.array)
      w.u32(GGUF_TYPE.f32)
      w.u64(value.length)
      for (const f of value) w.f32(f)
      break
    case 'i32s': {
      w.u32(GGUF_TYPE.array)
      w.u32(5) // int32
      w.u64(value.length)
      const b = Buffer.alloc(4 * value.length)
      value.forEach((v, i) => b.writeInt32LE(v, i * 4))
      w.push(b)
      break
    }
  }
}

/**
 * Builds the tiny GGUF in memory.
 * @param options model shape and PRNG seed
 */
export function tinyLlamaGguf(options: TinyLlamaOptions = {}): Buffer {
  const nEmbd = options.embedding ?? 64
  const nLayer = options.layers ?? 2
  const nHead = options.heads ?? 4
  const nFf = options.feedForward ?? 128
  const nCtx = options.contextLength ?? 2048
  const rand = mulberry32(options.seed ?? 42)

  // SPM vocab: <unk>, <s>, </s>, the 256 byte tokens (type 6 = byte: any UTF-8 text tokenizes), then pieces.
  const tokens = ['<unk>', '<s>', '</s>']
  const types = [2, 3, 3]
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)
    types.push(6)
  }
  for (const p of PIECES) {
    tokens.push(p)
    types.push(1)
  }
  const scores = tokens.map((t, i) => (types[i] === 1 ? -t.length : -1000))
  const nVocab = tokens.length

  const kvs: Kv[] = [
    ['general.architecture', 'string', 'llama'],
    ['general.name', 'string', 'sovra-tiny-llama'],
    ['general.alignment', 'u32', ALIGN],
    ['llama.context_length', 'u32', nCtx],
    ['llama.embedding_length', 'u32', nEmbd],
    ['llama.block_count', 'u32', nLayer],
    ['llama.feed_forward_length', 'u32', nFf],
    ['llama.attention.head_count', 'u32', nHead],
    ['llama.attention.head_count_kv', 'u32', nHead],
    ['llama.attention.layer_norm_rms_epsilon', 'f32', 1e-5],
    ['llama.rope.dimension_count', 'u32', nEmbd / nHead],
    ['tokenizer.ggml.model', 'string', 'llama'],
    ['tokenizer.ggml.tokens', 'strings', tokens],
    ['tokenizer.ggml.scores', 'f32s', scores],
    ['tokenizer.ggml.token_type', 'i32s', types],
    ['tokenizer.ggml.bos_token_id', 'u32', 1],
    ['tokenizer.ggml.eos_token_id', 'u32', 2],
    ['tokenizer.ggml.unknown_token_id', 'u32', 0],
  ]

  const omit = new Set(options.omitKeys ?? [])
  const kept = kvs.filter(([key]) => !omit.has(key))

  // Tensor shapes are ne0 first (token_embd is [n_embd, n_vocab]).
  const tensors: Array<[string, number[], 'norm' | 'weight']> = [['token_embd.weight', [nEmbd, nVocab], 'weight']]
  for (let l = 0; l < nLayer; l++) {
    const p = `blk.${l}.`
    tensors.push(
      [`${p}attn_norm.weight`, [nEmbd], 'norm'],
      [`${p}attn_q.weight`, [nEmbd, nEmbd], 'weight'],
      [`${p}attn_k.weight`, [nEmbd, nEmbd], 'weight'],
      [`${p}attn_v.weight`, [nEmbd, nEmbd], 'weight'],
      [`${p}attn_output.weight`, [nEmbd, nEmbd], 'weight'],
      [`${p}ffn_norm.weight`, [nEmbd], 'norm'],
      [`${p}ffn_gate.weight`, [nEmbd, nFf], 'weight'],
      [`${p}ffn_up.weight`, [nEmbd, nFf], 'weight'],
      [`${p}ffn_down.weight`, [nFf, nEmbd], 'weight'],
    )
  }
  tensors.push(['output_norm.weight', [nEmbd], 'norm'], ['output.weight', [nEmbd, nVocab], 'weight'])

  const w = new Writer()
  w.push(Buffer.from('GGUF', 'latin1'))
  w.u32(3)
  w.u64(tensors.length)
  w.u64(kept.length)
  for (const kv of kept) writeKv(w, kv)

  const datas: Buffer[] = []
  let offset = 0
  for (const [name, dims, kind] of tensors) {
    const n = dims.reduce((a, b) => a * b, 1)
    const data = Buffer.alloc(n * 4)
    const scale = kind === 'norm' ? 0 : 1 / Math.sqrt(dims[0] ?? 1)
    for (let i = 0; i < n; i++) data.writeFloatLE(kind === 'norm' ? 1 : (rand() * 2 - 1) * scale * 2, i * 4)
    w.str(name)
    w.u32(dims.length)
    for (const d of dims) w.u64(d)
    w.u32(GGML_F32)
    w.u64(offset)
    datas.push(data)
    offset += data.length
    offset += (ALIGN - (offset % ALIGN)) % ALIGN
  }
  w.pad()
  for (const data of datas) {
    w.push(data)
    w.pad()
  }
  return w.buffer()
}

/**
 * Writes the tiny GGUF to a file (creating its folder) and returns the path.
 * @param path where to write
 * @param options model shape and seed
 */
export async function writeTinyLlama(path: string, options: TinyLlamaOptions = {}): Promise<string> {
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, tinyLlamaGguf(options))
  return path
}
