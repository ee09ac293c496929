import { SovraError } from 'sovra'
import type { ParsedDocument } from './parse.ts'

/** The chunker's name and version; stored on every chunk so a chunker change can be planned. */
export const CHUNKER_VERSION = 'headings@1'

/** Counts the tokens of a text; {@link estimateTokens} unless a model's own tokenizer is given. */
export type TokenCounter = (text: string) => number

/** Options of {@link chunkDocument}. */
export interface ChunkOptions {
  /** Most tokens in one chunk, overlap included. */
  maxTokens: number
  /** Tokens a chunk repeats from the end of the one before it in the same section (0 for none); below maxTokens / 2. */
  overlapTokens: number
  /** Token counter; {@link estimateTokens} when absent. */
  tokenize?: TokenCounter | undefined
}

/**
 * One chunk of a document. `text` is exactly `parsed.text.slice(span[0], span[1])`, overlap included; its first
 * `overlap` characters repeat the end of the chunk before it (same section), so `[span[0] + overlap, span[1]]` is the
 * part no other chunk holds (use it to cite without duplicates).
 */
export interface Chunk {
  ordinal: number
  text: string
  span: [number, number]
  overlap: number
  headingPath: string[]
  tokens: number
  /** Hex SHA-256 of `text` as UTF-8: the heading path is not hashed, so embed `text` to keep the hash exact. */
  contentSha256: string
}

// One token per CJK character (BPE vocabularies split Japanese about that finely), one per word of other scripts,
// one per punctuation mark or symbol.
const CJK = String.raw`\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}`
const PIECE = new RegExp(String.raw`[${CJK}]|(?:(?![${CJK}])[\p{L}\p{N}\p{M}])+|[^\s\p{L}\p{N}\p{M}]`, 'gu')

// One shared instance: counting runs for every unit and candidate chunk, and matchAll would clone the RegExp each time.
const PIECE_COUNTER = new RegExp(PIECE.source, 'gu')

/** Character ranges of the estimator's tokens in `text`, from `from` to `to`. */
function pieces(text: string, from: number, to: number): Array<[number, number]> {
  const re = new RegExp(PIECE.source, 'gu')
  const slice = text.slice(from, to)
  return Array.from(slice.matchAll(re), (m) => [from + m.index, from + m.index + m[0].length])
}

/**
 * Estimates the tokens of a text without a model: each CJK character, each word of other scripts and each
 * punctuation mark or symbol counts one. Close to BPE counts for Japanese, a little under for English.
 * @param text the text to count
 * @example
 * estimateTokens('育児休業 applies to all staff.') // 4 + 4 + 1 = 9
 */
export function estimateTokens(text: string): number {
  const re = PIECE_COUNTER
  re.lastIndex = 0
  let n = 0
  while (re.exec(text) !== null) n++
  return n
}

/** Trims whitespace off both ends of a range. */
function trimRange(text: string, s: number, e: number): [number, number] {
  while (s < e && /\s/.test(text[s] ?? '')) s++
  while (e > s && /\s/.test(text[e - 1] ?? '')) e--
  return [s, e]
}

// Finer and finer places to cut a unit too large for a chunk: paragraphs, lines, sentences (Japanese and Latin
// sentence ends), clauses (commas), then the estimator's tokens, then characters.
const SPLITS = [/\n[ \t]*\n\s*/g, /\n/g, /(?<=[。！？!?])|(?<=[.;:])(?=\s)/g, /(?<=[、，])|(?<=,)(?=\s)/g]

/** Splits `[s, e)` into ordered, trimmed units of at most `budget` tokens each, cutting as coarsely as possible. */
function units(
  text: string,
  s: number,
  e: number,
  budget: number,
  count: TokenCounter,
  level = 0,
): Array<[number, number]> {
  ;[s, e] = trimRange(text, s, e)
  if (s >= e) return []
  if (count(text.slice(s, e)) <= budget) return [[s, e]]
  const re = SPLITS[level]
  let cuts: Array<[number, number]>
  if (re === undefined) {
    // Past sentences: the estimator's tokens; past those (a counter that puts one token over budget): code points.
    cuts = level === SPLITS.length ? pieces(text, s, e) : []
    if (cuts.length <= 1) {
      let at = s
      cuts = Array.from(text.slice(s, e), (c): [number, number] => [at, (at += c.length)])
    }
    if (cuts.length <= 1) return [[s, e]]
    // Each estimator token counts one, within any budget: only another counter needs them checked.
    if (count === estimateTokens && level === SPLITS.length) return cuts
    return cuts.flatMap(([a, b]) => units(text, a, b, budget, count, SPLITS.length + 1))
  }
  cuts = []
  let at = s
  for (const m of text.slice(s, e).matchAll(new RegExp(re.source, 'g'))) {
    cuts.push([at, s + m.index])
    at = s + m.index + m[0].length
  }
  cuts.push([at, e])
  // A separator at either end (a zero-width sentence end before the range's end) leaves one real part: go finer.
  cuts = cuts.map(([a, b]) => trimRange(text, a, b)).filter(([a, b]) => a < b)
  const next = cuts.length > 1 ? level : level + 1
  return cuts.flatMap(([a, b]) => units(text, a, b, budget, count, next))
}

/**
 * Packs a section's units into chunk ranges of at most maxTokens, each after the first opening with an overlap.
 * With the estimator, counts add up over units (no token spans a cut), so sums replace recounting: linear time.
 */
function pack(
  text: string,
  parts: Array<[number, number]>,
  opts: { maxTokens: number; overlapTokens: number },
  count: TokenCounter,
): Array<{ start: number; own: number; end: number }> {
  const additive = count === estimateTokens
  const sizes = additive ? parts.map(([a, b]) => count(text.slice(a, b))) : []
  const out: Array<{ start: number; own: number; end: number }> = []
  let i = 0
  while (i < parts.length) {
    const own = parts[i]?.[0] ?? 0
    let start = own
    const prev = out.at(-1)
    if (prev !== undefined && opts.overlapTokens > 0) {
      // Walk back over whole tokens of the previous chunk (never into the one before it) within overlapTokens.
      const back = pieces(text, prev.own, own).filter(([at]) => at > prev.own)
      if (additive) start = back[Math.max(back.length - opts.overlapTokens, 0)]?.[0] ?? own
      else {
        for (let k = back.length - 1; k >= 0; k--) {
          const at = back[k]?.[0] ?? own
          if (count(text.slice(at, own)) > opts.overlapTokens) break
          start = at
        }
      }
    }
    let end = parts[i]?.[1] ?? own
    let used = additive ? count(text.slice(start, own)) + (sizes[i] ?? 0) : 0
    i++
    while (i < parts.length) {
      const next = parts[i]?.[1] ?? end
      const total = additive ? used + (sizes[i] ?? 0) : count(text.slice(start, next))
      if (total > opts.maxTokens) break
      used = total
      end = next
      i++
    }
    // A counter that is not additive can put overlap + first unit over maxTokens: give up overlap, never the bound.
    while (start < own && count(text.slice(start, end)) > opts.maxTokens) {
      start = pieces(text, start, own)[1]?.[0] ?? own
    }
    out.push({ start, own, end })
  }
  return out
}

/** Hex SHA-256 of a string as UTF-8, through WebCrypto (available in isolates). */
async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('')
}

/**
 * Cuts a parsed document into chunks: first at every heading (a chunk never spans two sections), then, where a
 * section is over `maxTokens`, at paragraphs, lines, sentences and finally tokens, packing greedily with
 * `overlapTokens` of overlap between neighbours in a section. A section holding only its heading (its title lives on
 * in its subsections' heading paths) yields no chunk. Pure and deterministic: the same text gives the same chunks and
 * hashes. Sections are chunked independently, so an edit changes only chunks of its own section; within it, chunks
 * before the edit stay identical, and those after it too unless the edit moves a chunk boundary (greedy packing).
 * @param parsed the output of parseDocument
 * @param options token bounds, overlap and an optional token counter
 * @example
 * const chunks = await chunkDocument(await parseDocument({ bytes, key }), { maxTokens: 256, overlapTokens: 32 })
 */
export async function chunkDocument(parsed: ParsedDocument, options: ChunkOptions): Promise<Chunk[]> {
  const { maxTokens, overlapTokens } = options
  if (!Number.isInteger(maxTokens) || maxTokens < 8) {
    throw new SovraError('ERR_CONFIG', `chunk maxTokens: expected an integer >= 8, received ${String(maxTokens)}`)
  }
  if (!Number.isInteger(overlapTokens) || overlapTokens < 0 || overlapTokens * 2 >= maxTokens) {
    throw new SovraError(
      'ERR_CONFIG',
      `chunk overlapTokens: expected an integer from 0 to below maxTokens / 2 (${maxTokens / 2}), received ${String(overlapTokens)}`,
    )
  }
  const count = options.tokenize ?? estimateTokens
  const { text, headings } = parsed
  const sections: Array<{ start: number; end: number; path: string[]; titleEnd: number }> = []
  const stack: Array<{ level: number; title: string }> = []
  const first = headings[0]?.offset ?? text.length
  if (first > 0) sections.push({ start: 0, end: first, path: [], titleEnd: 0 })
  headings.forEach((h, k) => {
    while ((stack.at(-1)?.level ?? 0) >= h.level) stack.pop()
    stack.push({ level: h.level, title: h.title })
    const end = headings[k + 1]?.offset ?? text.length
    sections.push({ start: h.offset, end, path: stack.map((x) => x.title), titleEnd: h.offset + h.title.length })
  })
  const ranges: Array<{ start: number; own: number; end: number; path: string[] }> = []
  for (const section of sections) {
    const [s, e] = trimRange(text, section.start, section.end)
    if (e <= section.titleEnd) continue
    const parts = units(text, s, e, maxTokens - overlapTokens, count)
    for (const r of pack(text, parts, { maxTokens, overlapTokens }, count)) ranges.push({ ...r, path: section.path })
  }
  return Promise.all(
    ranges.map(async (r, ordinal) => {
      const chunkText = text.slice(r.start, r.end)
      return {
        ordinal,
        text: chunkText,
        span: [r.start, r.end] as [number, number],
        overlap: r.own - r.start,
        headingPath: [...r.path],
        tokens: count(chunkText),
        contentSha256: await sha256Hex(chunkText),
      }
    }),
  )
}
