import { createHash, randomBytes } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Engine } from '../../../infra/pools/engine.ts'
import { loadOnnxEngine } from '../../../infra/pools/engines/onnx.ts'
import { describeOnnxModel, onnxFiles } from '../../../infra/pools/onnx-files.ts'
import { writeTinyClassifierModel, writeTinyEmbeddingModel } from '../../../infra/pools/tiny/tiny-onnx.ts'
import { createTokenizer, loadTokenizer, type Tokenizer } from '../../../infra/pools/tokenizer.ts'
import { HEAVY_HOOK_MS } from '../../helpers.ts'

let root: string
let embDir: string
let engine: Engine
const signal = new AbortController().signal

const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0))
const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - (b[i] ?? NaN))))

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sovra-onnx-'))
  embDir = join(root, 'emb')
  await writeTinyEmbeddingModel(embDir)
  engine = await loadOnnxEngine({ modelPath: embDir, threads: 1, slots: 2 })
}, HEAVY_HOOK_MS)
afterAll(async () => {
  await engine?.close()
  await rm(root, { recursive: true, force: true })
})

describe('onnx engine', () => {
  it('embeds a batch into unit vectors of the model width', async () => {
    expect(engine.kind).toBe('onnx')
    expect([...engine.operations]).toEqual(['embed'])
    const out = await engine.embed!(['hello world', 'the cat is here', 'こんにちは 日本'], signal, 0)
    expect(out.vectors).toHaveLength(3)
    for (const v of out.vectors) {
      expect(v).toHaveLength(64)
      expect(Array.isArray(v)).toBe(true)
      expect(norm(v)).toBeCloseTo(1, 5)
    }
    expect(out.inputTokens).toBe(4 + 6 + 9) // [CLS] and [SEP] around 2 words, 4 words, and 5 kana pieces + 2 kanji
  })

  it('gives identical vectors for the same text and different ones for different texts', async () => {
    const {
      vectors: [a, b, c],
    } = await engine.embed!(['good movie', 'good movie', 'bad weather'], signal, 1)
    expect(a).toEqual(b)
    expect(maxDiff(a!, c!)).toBeGreaterThan(1e-3)
  })

  it('is not changed by padding in a batch', async () => {
    const {
      vectors: [alone],
    } = await engine.embed!(['hello'], signal, 0)
    const long = 'the quick brown fox would like to see every dog in the city again tomorrow morning'
    const {
      vectors: [padded],
    } = await engine.embed!(['hello', long], signal, 0)
    expect(maxDiff(alone!, padded!)).toBeLessThan(1e-5)
  })

  it('identifies a model file by its sha256, and a model folder by the digest of the files it read', async () => {
    const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')
    const bytes = await readFile(join(embDir, 'model.onnx'))
    const file = await describeOnnxModel(await onnxFiles(join(embDir, 'model.onnx')))
    expect(file).toEqual({ path: join(embDir, 'model.onnx'), bytes: bytes.length, sha256: sha(bytes), name: 'emb' })
    // Loaded by folder (as here): sha256 over the sorted `sha256sum` listing of config.json, model.onnx, tokenizer.json.
    const listing = await Promise.all(
      ['config.json', 'model.onnx', 'tokenizer.json'].map(
        async (f) => `${sha(await readFile(join(embDir, f)))}  ${f}\n`,
      ),
    )
    expect(engine.model).toMatchObject({ path: embDir, name: 'emb', sha256: sha(listing.join('')) })
    expect(engine.model.files?.find((f) => f.path === 'model.onnx')).toEqual({
      path: 'model.onnx',
      bytes: bytes.length,
      sha256: sha(bytes),
    })
  })

  it('writes byte-identical models for the same seed', async () => {
    const again = await writeTinyEmbeddingModel(join(root, 'emb-again'))
    // Buffer#equals: vitest's deep equality walks a 200 kB buffer byte by byte (slow).
    expect((await readFile(again)).equals(await readFile(join(embDir, 'model.onnx')))).toBe(true)
  })

  it('classifies with softmax scores over the configured labels, highest first', async () => {
    const labels = ['bad', 'ok', 'good', 'great']
    const clf = await loadOnnxEngine({
      modelPath: await writeTinyClassifierModel(join(root, 'cls'), { labels, seed: 7 }),
      threads: 1,
      slots: 1,
    })
    try {
      expect([...clf.operations]).toEqual(['classify'])
      const out = await clf.classify!(['great movie', 'terrible day'], signal, 0)
      expect(out.results).toHaveLength(2)
      for (const r of out.results) {
        expect(r.map((x) => x.label).sort()).toEqual([...labels].sort())
        expect(r.reduce((s, x) => s + x.score, 0)).toBeCloseTo(1, 5)
        expect(r.map((x) => x.score)).toEqual(r.map((x) => x.score).sort((a, b) => b - a))
      }
      expect(out.inputTokens).toBe(8)
    } finally {
      await clf.close()
    }
  })

  it('finds onnx/model.onnx with tokenizer.json and config.json in the parent directory', async () => {
    const dir = join(root, 'hub')
    await writeTinyEmbeddingModel(join(dir, 'onnx'))
    for (const f of ['tokenizer.json', 'config.json']) await rename(join(dir, 'onnx', f), join(dir, f))
    const e = await loadOnnxEngine({ modelPath: dir, threads: 1, slots: 1 })
    expect(e.model.path).toBe(dir)
    expect(e.model.files?.map((f) => f.path)).toEqual(['config.json', 'onnx/model.onnx', 'tokenizer.json'])
    await e.close()
  })

  it('rejects an empty batch, and an aborted signal before running', async () => {
    await expect(engine.embed!([], signal, 0)).rejects.toMatchObject({ code: 'ERR_BAD_REQUEST' })
    const ac = new AbortController()
    ac.abort(new Error('client went away'))
    await expect(engine.embed!(['hello'], ac.signal, 0)).rejects.toThrow('client went away')
  })

  it('fails with ERR_CONFIG naming the path for a corrupt .onnx file', async () => {
    const dir = join(root, 'corrupt')
    await mkdir(dir)
    await writeFile(join(dir, 'model.onnx'), randomBytes(4096))
    await copyFile(join(embDir, 'tokenizer.json'), join(dir, 'tokenizer.json'))
    const err = await loadOnnxEngine({ modelPath: dir, threads: 1, slots: 1 }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_CONFIG', message: expect.stringContaining(join(dir, 'model.onnx')) })
  })

  it('fails with ERR_CONFIG naming the places it looked when tokenizer.json is missing', async () => {
    const dir = join(root, 'no-tokenizer', 'm')
    await mkdir(dir, { recursive: true })
    await copyFile(join(embDir, 'model.onnx'), join(dir, 'model.onnx'))
    const err = await loadOnnxEngine({ modelPath: join(dir, 'model.onnx'), threads: 1, slots: 1 }).catch(
      (e: unknown) => e,
    )
    expect(err).toMatchObject({ code: 'ERR_CONFIG', message: expect.stringContaining('no tokenizer.json') })
    expect((err as Error).message).toContain(join(dir, 'tokenizer.json'))
    expect((err as Error).message).toContain(join(root, 'no-tokenizer', 'tokenizer.json'))
  })

  describe('tokenizer', () => {
    let tok: Tokenizer
    let vocab: Record<string, number>
    const id = (t: string) => {
      if (vocab[t] === undefined) throw new Error(`${t} is not in the tiny vocab`)
      return vocab[t]
    }
    beforeAll(async () => {
      tok = await loadTokenizer(join(embDir, 'tokenizer.json'))
      vocab = (
        JSON.parse(await readFile(join(embDir, 'tokenizer.json'), 'utf8')) as {
          model: { vocab: Record<string, number> }
        }
      ).model.vocab
    })

    it('encodes WordPiece words with [CLS] and [SEP], lowercased and split at punctuation', () => {
      expect(tok.type).toBe('WordPiece')
      expect(tok.padId).toBe(0)
      expect(tok.encode('Hello, World!', 512)).toEqual([2, id('hello'), id(','), id('world'), id('!'), 3])
    })

    it('uses ## continuation pieces, [UNK] for words it cannot cover, and one word per CJK ideograph', () => {
      expect(tok.encode('hellos café', 512)).toEqual([
        2,
        id('hello'),
        id('##s'),
        id('c'),
        id('##a'),
        id('##f'),
        id('##e'),
        3,
      ])
      expect(tok.encode('ωmega', 512)).toEqual([2, 1, 3])
      expect(tok.encode('日本はい', 512)).toEqual([2, id('日'), id('本'), id('は'), id('##い'), 3])
    })

    it('truncates to maxLength keeping the final special token', () => {
      const ids = tok.encode('one two new year good day', 5)
      expect(ids).toEqual([2, id('one'), id('two'), id('new'), 3])
      expect(() => tok.encode('one', 1)).toThrow(/maxLength: expected an integer >= 2/)
    })

    it('encodes Unigram text with the Viterbi-best segmentation', () => {
      const pieces: Array<[string, number]> = [
        ['<s>', 0],
        ['<pad>', 0],
        ['</s>', 0],
        ['<unk>', 0],
        ['▁', -2],
        ['▁abc', -5],
        ['d', -5],
        ['▁ab', -2],
        ['cd', -2],
        ['a', -3],
        ['b', -3],
        ['c', -3],
      ]
      const uni = createTokenizer(
        {
          normalizer: {
            type: 'Sequence',
            normalizers: [
              { type: 'Precompiled', precompiled_charsmap: '' },
              { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' },
            ],
          },
          pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
          post_processor: {
            type: 'TemplateProcessing',
            single: [
              { SpecialToken: { id: '<s>', type_id: 0 } },
              { Sequence: { id: 'A', type_id: 0 } },
              { SpecialToken: { id: '</s>', type_id: 0 } },
            ],
            special_tokens: {
              '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] },
              '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] },
            },
          },
          model: { type: 'Unigram', unk_id: 3, vocab: pieces },
        },
        'inline',
      )
      expect(uni.padId).toBe(1)
      // Greedy longest-match would take ▁abc + d (-10); Viterbi finds ▁ab + cd (-4).
      expect(uni.encode('abcd', 64)).toEqual([0, 7, 8, 2])
      // Two spaces collapse; unknown chars fuse into one <unk>.
      expect(uni.encode('abcd  xyz', 64)).toEqual([0, 7, 8, 4, 3, 2])
      expect(uni.encode('abcd abcd abcd', 4)).toEqual([0, 7, 8, 2])
    })

    it('rejects an unsupported model type naming it and the supported ones', () => {
      expect(() => createTokenizer({ model: { type: 'BPE', vocab: {}, merges: [] } }, 'x/tokenizer.json')).toThrow(
        /"BPE" is not supported; supported: WordPiece, Unigram/,
      )
    })
  })
})
