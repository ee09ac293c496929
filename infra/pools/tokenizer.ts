import { readFile } from 'node:fs/promises'

import { SovraError } from '../../runtime/core/errors.ts'

/**
 * Loads a HuggingFace `tokenizers` tokenizer.json and encodes text to token ids, for the ONNX engine. It covers the
 * two model families encoder exports use: WordPiece (BERT, MiniLM) and Unigram (SentencePiece: XLM-R,
 * multilingual-e5). Behaviour follows huggingface/tokenizers (tokenizers/src/{normalizers,pre_tokenizers,models}).
 */

/** A loaded tokenizer. */
export interface Tokenizer {
  /** The tokenizer.json `model.type`. */
  readonly type: 'WordPiece' | 'Unigram'
  /** The id to pad batches with. */
  readonly padId: number
  /**
   * Encodes text to ids with the post-processor's special tokens ([CLS] ... [SEP], <s> ... </s>).
   * @param text the text
   * @param maxLength the most ids to return; the text is cut, the special tokens are kept
   */
  encode(text: string, maxLength: number): number[]
}

type Json = Record<string, unknown>
type Step = (s: string) => string
type Split = (words: string[]) => string[]
const SUPPORTED = ['WordPiece', 'Unigram']

const bad = (path: string, what: string) => new SovraError('ERR_CONFIG', `tokenizer ${JSON.stringify(path)}: ${what}`)
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null ? (v as Json) : {})

/** CJK Unified Ideographs blocks, as BERT's `_is_chinese_char` (kana and hangul are not included there). */
function isCjk(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  )
}

// BERT counts all non-alphanumeric ASCII as punctuation ("$", "^", "`" are not \p{P}) plus Unicode P*.
const PUNCT = /[!-/:-@[-`{-~]|\p{P}/u
const CONTROL = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}]/u

function bertNormalizer(cfg: Json): Step {
  const lowercase = cfg['lowercase'] !== false
  const strip = (cfg['strip_accents'] ?? lowercase) === true
  return (text) => {
    let out = ''
    for (const ch of text) {
      const cp = ch.codePointAt(0) ?? 0
      if (cfg['clean_text'] !== false) {
        if (/\s/u.test(ch)) {
          out += ' '
          continue
        }
        if (cp === 0 || cp === 0xfffd || CONTROL.test(ch)) continue
      }
      out += cfg['handle_chinese_chars'] !== false && isCjk(cp) ? ` ${ch} ` : ch
    }
    if (strip) out = out.normalize('NFD').replace(/\p{Mn}/gu, '')
    return lowercase ? out.toLowerCase() : out
  }
}

function normalizer(cfg: unknown, path: string): Step {
  if (cfg === null || cfg === undefined) return (s) => s
  const c = obj(cfg)
  switch (c['type']) {
    case 'BertNormalizer':
      return bertNormalizer(c)
    case 'Sequence': {
      const steps = ((c['normalizers'] ?? []) as unknown[]).map((n) => normalizer(n, path))
      return (s) => steps.reduce((acc, f) => f(acc), s)
    }
    // SentencePiece's precompiled charsmap is its NFKC variant; String.normalize('NFKC') is the close stand-in.
    case 'Precompiled':
    case 'NFKC':
      return (s) => s.normalize('NFKC')
    case 'NFC':
    case 'NFD':
    case 'NFKD': {
      const form = c['type']
      return (s) => s.normalize(form)
    }
    case 'Lowercase':
      return (s) => s.toLowerCase()
    case 'StripAccents':
      return (s) => s.normalize('NFD').replace(/\p{Mn}/gu, '')
    case 'Strip':
      return (s) => s.trim()
    case 'Prepend':
      return (s) => (s === '' ? s : String(c['prepend']) + s)
    case 'Replace': {
      const p = obj(c['pattern'])
      const re = typeof p['Regex'] === 'string' ? new RegExp(p['Regex'], 'gu') : String(p['String'] ?? '')
      return (s) => s.replaceAll(re, String(c['content'] ?? ''))
    }
    default:
      throw bad(
        path,
        `normalizer type ${JSON.stringify(c['type'])} is not supported; supported: BertNormalizer, ` +
          'Sequence, Precompiled, NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Strip, Prepend, Replace',
      )
  }
}

function bertSplit(word: string): string[] {
  const out: string[] = []
  let cur = ''
  for (const ch of word) {
    if (/\s/u.test(ch)) {
      if (cur) out.push(cur)
      cur = ''
    } else if (PUNCT.test(ch)) {
      if (cur) out.push(cur)
      out.push(ch)
      cur = ''
    } else cur += ch
  }
  if (cur) out.push(cur)
  return out
}

function preTokenizer(cfg: unknown, path: string): Split {
  if (cfg === null || cfg === undefined) return (w) => w
  const c = obj(cfg)
  switch (c['type']) {
    case 'BertPreTokenizer':
      return (words) => words.flatMap(bertSplit)
    case 'WhitespaceSplit':
      return (words) => words.flatMap((w) => w.split(/\s+/u).filter(Boolean))
    case 'Whitespace':
      return (words) => words.flatMap((w) => w.match(/[\p{L}\p{N}\p{M}_]+|[^\p{L}\p{N}\p{M}_\s]+/gu) ?? [])
    case 'Sequence': {
      const steps = ((c['pretokenizers'] ?? []) as unknown[]).map((p) => preTokenizer(p, path))
      return (words) => steps.reduce((acc, f) => f(acc), words)
    }
    case 'Metaspace': {
      const rep = String(c['replacement'] ?? '▁')
      const scheme = c['prepend_scheme'] ?? (c['add_prefix_space'] === false ? 'never' : 'always')
      return (words) =>
        words.flatMap((w, i) => {
          let s = w.replaceAll(' ', rep)
          if ((scheme === 'always' || (scheme === 'first' && i === 0)) && !s.startsWith(rep)) s = rep + s
          // split=true (the default) cuts before each replacement char, keeping it on the next piece.
          return c['split'] === false
            ? [s]
            : s
                .split(rep)
                .flatMap((p, k) => (k === 0 ? [p] : [rep + p]))
                .filter(Boolean)
        })
    }
    default:
      throw bad(
        path,
        `pre_tokenizer type ${JSON.stringify(c['type'])} is not supported; supported: ` +
          'BertPreTokenizer, WhitespaceSplit, Whitespace, Metaspace, Sequence',
      )
  }
}

function wordPiece(m: Json, path: string): { ids: (word: string) => number[]; vocab: Map<string, number> } {
  const vocab = new Map(Object.entries(obj(m['vocab'])).map(([k, v]) => [k, Number(v)]))
  const unk = vocab.get(String(m['unk_token'] ?? '[UNK]'))
  if (unk === undefined) throw bad(path, `unk_token ${JSON.stringify(m['unk_token'])} is not in the vocab`)
  const prefix = String(m['continuing_subword_prefix'] ?? '##')
  const maxChars = Number(m['max_input_chars_per_word'] ?? 100)
  return {
    vocab,
    ids: (word) => {
      const chars = Array.from(word)
      if (chars.length > maxChars) return [unk]
      const out: number[] = []
      // Greedy longest-match-first; a word with any piece missing becomes one [UNK] (BERT's WordpieceTokenizer).
      for (let start = 0; start < chars.length;) {
        let end = chars.length
        let id: number | undefined
        for (; end > start; end--) {
          id = vocab.get((start > 0 ? prefix : '') + chars.slice(start, end).join(''))
          if (id !== undefined) break
        }
        if (id === undefined) return [unk]
        out.push(id)
        start = end
      }
      return out
    },
  }
}

function unigram(m: Json, path: string): { ids: (word: string) => number[]; vocab: Map<string, number> } {
  const list = m['vocab']
  if (!Array.isArray(list) || list.length === 0)
    throw bad(path, 'model.vocab: expected a non-empty [[piece, score], ...] list')
  const vocab = new Map<string, number>()
  const scores: number[] = []
  let maxLen = 1
  let minScore = 0
  list.forEach((entry: unknown, id) => {
    const [piece, score] = entry as [string, number]
    scores.push(score)
    minScore = Math.min(minScore, score)
    if (!vocab.has(piece)) vocab.set(piece, id)
    maxLen = Math.max(maxLen, Array.from(piece).length)
  })
  const unkId = typeof m['unk_id'] === 'number' ? m['unk_id'] : undefined
  // huggingface/tokenizers unigram: an unknown char costs the lowest piece score minus 10 (kUnkPenalty).
  // (A loop, not Math.min(...scores): XLM-R's 250k pieces overflow the argument limit.)
  const unkScore = minScore - 10
  return {
    vocab,
    ids: (word) => {
      const chars = Array.from(word)
      const n = chars.length
      const best = new Float64Array(n + 1).fill(-Infinity)
      const from = new Int32Array(n + 1)
      const piece = new Int32Array(n + 1)
      best[0] = 0
      for (let i = 0; i < n; i++) {
        const base = best[i] ?? -Infinity
        if (base === -Infinity) continue
        let s = ''
        let single = false
        for (let j = i; j < Math.min(n, i + maxLen); j++) {
          s += chars[j]
          const id = vocab.get(s)
          if (id === undefined) continue
          if (j === i) single = true
          const cand = base + (scores[id] ?? 0)
          if (cand > (best[j + 1] ?? -Infinity)) {
            best[j + 1] = cand
            from[j + 1] = i
            piece[j + 1] = id
          }
        }
        if (!single && unkId !== undefined && base + unkScore > (best[i + 1] ?? -Infinity)) {
          best[i + 1] = base + unkScore
          from[i + 1] = i
          piece[i + 1] = unkId
        }
      }
      if (best[n] === -Infinity)
        throw new SovraError(
          'ERR_BAD_REQUEST',
          `text has ${JSON.stringify(word)}, which ` +
            `tokenizer ${JSON.stringify(path)} cannot encode (no pieces cover it and the model has no unk_id)`,
        )
      const out: number[] = []
      for (let k = n; k > 0; k = from[k] ?? 0) {
        const id = piece[k] ?? 0
        // Consecutive unknown chars fuse into one unk, as tokenizers' Unigram does (fuse_unk).
        if (!(id === unkId && out[out.length - 1] === unkId)) out.push(id)
      }
      return out.reverse()
    },
  }
}

/** The special ids the post-processor puts before and after a single sequence. */
function specials(cfg: unknown, vocab: Map<string, number>, path: string): { before: number[]; after: number[] } {
  const c = obj(cfg)
  const pairId = (v: unknown) => Number((v as [string, number] | undefined)?.[1])
  switch (c['type']) {
    case undefined:
      return { before: [], after: [] }
    case 'BertProcessing':
    case 'RobertaProcessing':
      return { before: [pairId(c['cls'])], after: [pairId(c['sep'])] }
    case 'Sequence': {
      const parts = ((c['processors'] ?? []) as unknown[]).filter((p) => obj(p)['type'] !== 'ByteLevel')
      return parts.length === 0 ? { before: [], after: [] } : specials(parts[0], vocab, path)
    }
    case 'TemplateProcessing': {
      const table = obj(c['special_tokens'])
      const out: { before: number[]; after: number[] } = { before: [], after: [] }
      let side: 'before' | 'after' = 'before'
      for (const item of (c['single'] ?? []) as unknown[]) {
        const tok = obj(obj(item)['SpecialToken'])
        if (tok['id'] === undefined) {
          side = 'after'
          continue
        }
        const ids = obj(table[String(tok['id'])])['ids'] ?? [vocab.get(String(tok['id']))]
        if (!Array.isArray(ids) || ids.some((i) => typeof i !== 'number'))
          throw bad(path, `post_processor special token ${JSON.stringify(tok['id'])} has no id`)
        out[side].push(...(ids as number[]))
      }
      return out
    }
    default:
      throw bad(
        path,
        `post_processor type ${JSON.stringify(c['type'])} is not supported; supported: ` +
          'TemplateProcessing, BertProcessing, RobertaProcessing, Sequence',
      )
  }
}

/**
 * Builds a tokenizer from parsed tokenizer.json content. Throws ERR_CONFIG for an unsupported model, normalizer,
 * pre-tokenizer or post-processor, naming it and the supported ones.
 * @param json the parsed tokenizer.json
 * @param path where it came from, for messages
 */
export function createTokenizer(json: unknown, path: string): Tokenizer {
  const root = obj(json)
  const m = obj(root['model'])
  const type = m['type']
  if (type !== 'WordPiece' && type !== 'Unigram')
    throw bad(path, `model.type ${JSON.stringify(type)} is not supported; supported: ${SUPPORTED.join(', ')}`)
  const model = type === 'WordPiece' ? wordPiece(m, path) : unigram(m, path)
  const normalize = normalizer(root['normalizer'], path)
  const split = preTokenizer(root['pre_tokenizer'], path)
  const { before, after } = specials(root['post_processor'], model.vocab, path)
  const padding = obj(root['padding'])
  const padId =
    typeof padding['pad_id'] === 'number'
      ? padding['pad_id']
      : (model.vocab.get('[PAD]') ?? model.vocab.get('<pad>') ?? 0)
  return {
    type,
    padId,
    encode(text, maxLength) {
      const room = maxLength - before.length - after.length
      if (!Number.isInteger(maxLength) || room < 0)
        throw new SovraError(
          'ERR_BAD_REQUEST',
          `maxLength: expected an ` +
            `integer >= ${before.length + after.length} (the special tokens), received ${maxLength}`,
        )
      const body: number[] = []
      // Stop at `room` ids: a long document need not be tokenized past what the model will see.
      for (const word of split([normalize(text)])) {
        if (body.length >= room) break
        body.push(...model.ids(word))
      }
      return [...before, ...body.slice(0, room), ...after]
    },
  }
}

/**
 * Loads a HuggingFace tokenizer.json. Throws ERR_CONFIG naming the path when it is missing, not JSON, or uses an
 * unsupported model type (supported: WordPiece, Unigram).
 * @param path the tokenizer.json file
 * @example
 * const tok = await loadTokenizer('models/all-MiniLM-L6-v2/tokenizer.json')
 * tok.encode('hello world', 256) // [101, 7592, 2088, 102]
 */
export async function loadTokenizer(path: string): Promise<Tokenizer> {
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw bad(path, `cannot be read: ${e.code ?? e.message}`)
  })
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    throw bad(path, `is not valid JSON: ${(e as Error).message}`)
  }
  return createTokenizer(json, path)
}
