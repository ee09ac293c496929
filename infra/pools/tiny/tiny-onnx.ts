import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

import { bytesField, concat, intField, packedFloats, packedVarints, stringField } from './protobuf.ts'
import { mulberry32 } from './prng.ts'

/**
 * Writes tiny ONNX models from code, with a HuggingFace-format tokenizer.json and config.json beside them, so tests
 * and demos exercise the real onnxruntime path without downloading a model. Weights come from a seeded PRNG: the
 * same seed writes byte-identical files. Field numbers follow onnx/onnx.proto (IR version 8, opset 17).
 */

/** Options of {@link writeTinyEmbeddingModel}. */
export interface TinyEmbeddingOptions {
  /** Embedding width (default 64). */
  dim?: number
  /** PRNG seed of the weights (default 1). */
  seed?: number
}

/** Options of {@link writeTinyClassifierModel}. */
export interface TinyClassifierOptions extends TinyEmbeddingOptions {
  /** Class labels, in logit order (default negative, neutral, positive). */
  labels?: string[]
}

const FLOAT = 1
const INT64 = 7
const ATTR_INT = 2

function weights(rand: () => number, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale)
}

function floatTensor(name: string, dims: number[], data: Float32Array): Uint8Array {
  return concat([packedVarints(1, dims), intField(2, FLOAT), packedFloats(4, data), stringField(8, name)])
}

function int64Tensor(name: string, dims: number[], data: number[]): Uint8Array {
  return concat([packedVarints(1, dims), intField(2, INT64), packedVarints(7, data), stringField(8, name)])
}

function node(op: string, inputs: string[], outputs: string[], attrs: Record<string, number> = {}): Uint8Array {
  return concat([
    ...inputs.map((i) => stringField(1, i)),
    ...outputs.map((o) => stringField(2, o)),
    stringField(3, `${op}_${outputs[0] ?? ''}`),
    stringField(4, op),
    ...Object.entries(attrs).map(([name, i]) =>
      bytesField(5, concat([stringField(1, name), intField(3, i), intField(20, ATTR_INT)])),
    ),
  ])
}

/** A ValueInfoProto of a tensor; string dims are symbolic (dim_param), numbers fixed (dim_value). */
function valueInfo(name: string, elemType: number, dims: Array<number | string>): Uint8Array {
  const shape = concat(dims.map((d) => bytesField(1, typeof d === 'number' ? intField(1, d) : stringField(2, d))))
  return concat([
    stringField(1, name),
    bytesField(2, bytesField(1, concat([intField(1, elemType), bytesField(2, shape)]))),
  ])
}

function model(nodes: Uint8Array[], initializers: Uint8Array[], output: Uint8Array): Uint8Array {
  const graph = concat([
    ...nodes.map((n) => bytesField(1, n)),
    stringField(2, 'sovra_tiny'),
    ...initializers.map((t) => bytesField(5, t)),
    bytesField(11, valueInfo('input_ids', INT64, ['batch', 'seq'])),
    bytesField(11, valueInfo('attention_mask', INT64, ['batch', 'seq'])),
    bytesField(12, output),
  ])
  return concat([intField(1, 8), stringField(2, 'sovra'), bytesField(7, graph), bytesField(8, intField(2, 17))])
}

/** Nodes shared by both models: token embeddings with padded positions zeroed by the attention mask. */
function maskedEmbeddingNodes(out: string): Uint8Array[] {
  return [
    node('Gather', ['embeddings', 'input_ids'], ['token_embeddings']),
    node('Cast', ['attention_mask'], ['mask_float'], { to: FLOAT }),
    // Opset 13 moved Unsqueeze's axes from an attribute to an input (onnx/docs/Changelog.md, Unsqueeze-13).
    node('Unsqueeze', ['mask_float', 'axes_2'], ['mask_3d']),
    node('Mul', ['token_embeddings', 'mask_3d'], [out]),
  ]
}

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]']
const LETTERS = 'abcdefghijklmnopqrstuvwxyz'.split('')
const DIGITS = '0123456789'.split('')
const PUNCT = '.,!?;:\'"-()[]{}/&%$#@*+=<>_~`^|\\'.split('')
const WORDS = `the be to of and a in that have i it for not on with he as you do at this but his by from they we say
her she or an will my one all would there their what so up out if about who get which go me when make can like time
no just him know take people into year your good some could them see other than then now look only come its over
think also back after use two how our work first well way even new want because any these give day most us is was
are were been has had did said made went got hello world text model data language word sentence vector search query
document answer question machine learning deep neural network function server cloud open source code program file
cat dog bird fish tree water fire earth air sun moon star sky rain snow wind house car road city country home school
book paper letter love hate happy sad great bad best worst nice terrible awesome excellent poor fine okay yes thank
thanks please sorry today tomorrow yesterday morning night week month red blue green black white big small long
short old young high low fast slow hot cold right left true false many much more less very really again never always
here where why every each same different own last next early late hard easy free full empty little large help find
tell ask feel try leave call keep let begin seem show hear play run move live believe hold bring happen write provide
sit stand lose pay meet include continue set learn change lead understand watch follow stop create speak read spend
grow offer remember consider appear buy wait serve die send expect build stay fall cut reach kill remain food money
music movie game team life family friend child man woman person name part place case point government company number
group problem fact hand eye head face service product price quality customer order support issue bug error fix test`.split(
  /\s+/,
)
const HIRAGANA = Array.from({ length: 0x3094 - 0x3041 }, (_, i) => String.fromCodePoint(0x3041 + i))
const KATAKANA = Array.from({ length: 0x30fb - 0x30a1 }, (_, i) => String.fromCodePoint(0x30a1 + i))
const KANJI = '日本語東京人大学生先時間年月火水木金土山川田中上下今何私好愛猫犬会社電話車'.split('')

/** The WordPiece vocabulary: specials first ([PAD]=0 .. [SEP]=3), then pieces, each once, in a fixed order. */
function vocabulary(): Record<string, number> {
  const kana = [...HIRAGANA, ...KATAKANA]
  const pieces = [
    ...SPECIALS,
    ...LETTERS,
    ...DIGITS,
    ...PUNCT,
    ...[...LETTERS, ...DIGITS, ...kana].map((c) => `##${c}`),
    ...WORDS,
    ...kana,
    ...KANJI,
  ]
  const vocab: Record<string, number> = {}
  for (const p of pieces) if (!(p in vocab)) vocab[p] = Object.keys(vocab).length
  return vocab
}

/** A tokenizer.json in the HuggingFace `tokenizers` format, shaped like bert-base-uncased's. */
function tokenizerJson(vocab: Record<string, number>): unknown {
  const special = (content: string) => ({
    id: vocab[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  })
  const token = (id: string) => ({ SpecialToken: { id, type_id: 0 } })
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map(special),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [token('[CLS]'), { Sequence: { id: 'A', type_id: 0 } }, token('[SEP]')],
      pair: [
        token('[CLS]'),
        { Sequence: { id: 'A', type_id: 0 } },
        token('[SEP]'),
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: Object.fromEntries(['[CLS]', '[SEP]'].map((t) => [t, { id: t, ids: [vocab[t]], tokens: [t] }])),
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  }
}

async function writeFiles(
  dir: string,
  onnx: Uint8Array,
  vocab: Record<string, number>,
  config: object,
): Promise<string> {
  await mkdir(dir, { recursive: true })
  const modelPath = join(dir, 'model.onnx')
  await writeFile(modelPath, onnx)
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson(vocab), null, 2))
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify(
      {
        model_type: 'sovra-tiny',
        max_position_embeddings: 512,
        vocab_size: Object.keys(vocab).length,
        pad_token_id: 0,
        ...config,
      },
      null,
      2,
    ),
  )
  return modelPath
}

function dimOf(opts: TinyEmbeddingOptions): number {
  const dim = opts.dim ?? 64
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`dim: expected a positive integer, received ${dim}`)
  return dim
}

/**
 * Writes a tiny embedding model (output `last_hidden_state` [batch, seq, dim], pooled by the engine) with its
 * tokenizer.json and config.json into a directory.
 * @param dir the directory (created if missing)
 * @param opts embedding width and PRNG seed
 * @returns the path of `dir/model.onnx`
 * @example
 * const modelPath = await writeTinyEmbeddingModel(await mkdtemp(join(tmpdir(), 'tiny-')))
 */
export async function writeTinyEmbeddingModel(dir: string, opts: TinyEmbeddingOptions = {}): Promise<string> {
  const dim = dimOf(opts)
  const vocab = vocabulary()
  const size = Object.keys(vocab).length
  const rand = mulberry32(opts.seed ?? 1)
  const onnx = model(
    maskedEmbeddingNodes('last_hidden_state'),
    [floatTensor('embeddings', [size, dim], weights(rand, size * dim, 1)), int64Tensor('axes_2', [1], [2])],
    valueInfo('last_hidden_state', FLOAT, ['batch', 'seq', dim]),
  )
  return writeFiles(dir, onnx, vocab, { architectures: ['SovraTinyModel'], hidden_size: dim })
}

/**
 * Writes a tiny sequence classifier (masked sum of token embeddings, then a linear layer; output `logits`
 * [batch, labels]) with its tokenizer.json and a config.json carrying HF-style `id2label` / `label2id`.
 * @param dir the directory (created if missing)
 * @param opts labels, embedding width and PRNG seed
 * @returns the path of `dir/model.onnx`
 */
export async function writeTinyClassifierModel(dir: string, opts: TinyClassifierOptions = {}): Promise<string> {
  const dim = dimOf(opts)
  const labels = opts.labels ?? ['negative', 'neutral', 'positive']
  if (labels.length < 1) throw new RangeError('labels: expected at least one label, received []')
  const vocab = vocabulary()
  const size = Object.keys(vocab).length
  const rand = mulberry32(opts.seed ?? 1)
  const onnx = model(
    [
      ...maskedEmbeddingNodes('masked_embeddings'),
      // Opset 13 moved ReduceSum's axes to an input as well (onnx/docs/Changelog.md, ReduceSum-13).
      node('ReduceSum', ['masked_embeddings', 'axes_1'], ['pooled'], { keepdims: 0 }),
      node('MatMul', ['pooled', 'classifier_weight'], ['scores']),
      node('Add', ['scores', 'classifier_bias'], ['logits']),
    ],
    [
      floatTensor('embeddings', [size, dim], weights(rand, size * dim, 1)),
      int64Tensor('axes_2', [1], [2]),
      int64Tensor('axes_1', [1], [1]),
      floatTensor('classifier_weight', [dim, labels.length], weights(rand, dim * labels.length, 1 / Math.sqrt(dim))),
      floatTensor('classifier_bias', [labels.length], weights(rand, labels.length, 0.1)),
    ],
    valueInfo('logits', FLOAT, ['batch', labels.length]),
  )
  return writeFiles(dir, onnx, vocab, {
    architectures: ['SovraTinyForSequenceClassification'],
    hidden_size: dim,
    id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
  })
}
