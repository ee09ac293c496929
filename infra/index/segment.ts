/**
 * Word segmentation for the lexical half of env.INDEX. PostgreSQL's text-search parsers do not split Japanese (or
 * Chinese, Thai) into words, so both the stored document and the query are split here with `Intl.Segmenter` and the
 * words are joined with spaces before `to_tsvector('simple', ...)` (ref: issue 12, FACTS.md "Japanese words").
 */

const SEGMENTER = new Intl.Segmenter('ja', { granularity: 'word' })

/** Characters that are not part of a word: everything except letters, combining marks and digits. */
const NON_WORD = /[^\p{L}\p{M}\p{N}]+/u

/**
 * Query words too common to carry meaning. With an OR-query they would match nearly every chunk: single kana
 * (the particles の, は, に, を, が, ...) and a few English function words. Documents keep them (phrase positions).
 */
const QUERY_STOPWORDS = new Set(
  'a an and are as at be by do does for from how i in is it of on or the to was what when where which who why with'.split(
    ' ',
  ),
)
const SINGLE_KANA = /^[\p{Script=Hiragana}\p{Script=Katakana}ー]$/u

/**
 * Splits text into lowercase words, language-agnostically: Japanese by dictionary (Intl.Segmenter, ICU), English
 * and other space-separated scripts at spaces and punctuation. Text is NFKC-normalised first, so full-width Latin
 * letters and digits (ＡＢＣ１２３) match their ASCII forms. Every word holds only letters, marks and digits, so
 * words can be joined into tsquery syntax without escaping.
 * @param text any text
 * @example
 * segmentWords('育児休業の申請は人事部に提出してください') // ['育児', '休業', 'の', '申請', 'は', '人事部', ...]
 */
export function segmentWords(text: string): string[] {
  const words: string[] = []
  for (const s of SEGMENTER.segment(text.normalize('NFKC').toLowerCase())) {
    if (s.isWordLike !== true) continue
    for (const w of s.segment.split(NON_WORD)) if (w !== '') words.push(w)
  }
  return words
}

/**
 * The lexical document for a chunk: its words joined by spaces, for `to_tsvector('simple', $1)`.
 * @param text the chunk's text
 */
export function lexicalDocument(text: string): string {
  return segmentWords(text).join(' ')
}

/**
 * The lexical query for a question: its distinct content words OR-ed (`w1 | w2 | ...`) for
 * `to_tsquery('simple', $1)`, or `undefined` when no word is left. OR, not AND (`plainto_tsquery`): a short question
 * such as 育児休業の申請期限は？ rarely has every word in one passage (期限 may be written 締切), so AND would miss it;
 * `ts_rank` then puts passages matching more of the words first. Particles and function words are dropped, since
 * with OR they would match everything.
 * @param text the question
 * @example
 * lexicalQuery('育児休業の申請期限は？') // '育児 | 休業 | 申請 | 期限'
 */
export function lexicalQuery(text: string): string | undefined {
  const words = [...new Set(segmentWords(text))].filter((w) => !QUERY_STOPWORDS.has(w) && !SINGLE_KANA.test(w))
  return words.length === 0 ? undefined : words.join(' | ')
}
