import { SovraError } from 'sovra'

/** The parser that produced a document's text, with its version; stored on every chunk so a parser change can be planned. */
export type ParserVersion = 'markdown@1' | 'text@1' | 'html@1' | 'pdf@1'

/** The kinds of document `reindex` reads. */
export type DocumentKind = 'markdown' | 'text' | 'html' | 'pdf'

/** A heading found in a document: its level (1-6), its title, and the character offset of the title in the text. */
export interface Heading {
  level: number
  title: string
  offset: number
}

/** A parsed document: plain text (LF line ends, paragraphs split by one blank line) and its headings in order. */
export interface ParsedDocument {
  text: string
  headings: Heading[]
  parser: ParserVersion
}

/** Input of {@link parseDocument}. */
export interface ParseInput {
  /** The object's bytes. */
  bytes: Uint8Array
  /** The object's content type (parameters such as `charset` are ignored); the key's extension is used when absent. */
  contentType?: string | undefined
  /** The object's key, used for detection by extension and named in every error. */
  key: string
  /** Largest document accepted, in bytes; {@link DEFAULT_MAX_DOCUMENT_BYTES} when absent. */
  maxBytes?: number | undefined
}

/** Largest document {@link parseDocument} accepts unless told otherwise (16 MiB). */
export const DEFAULT_MAX_DOCUMENT_BYTES = 16 * 1024 * 1024

/** Content types per kind; the first of each is canonical. */
export const DOCUMENT_CONTENT_TYPES: Readonly<Record<DocumentKind, readonly string[]>> = {
  markdown: ['text/markdown', 'text/x-markdown'],
  text: ['text/plain'],
  html: ['text/html', 'application/xhtml+xml'],
  pdf: ['application/pdf'],
}

/** Key extensions per kind, used when the content type is absent or generic. */
export const DOCUMENT_EXTENSIONS: Readonly<Record<DocumentKind, readonly string[]>> = {
  markdown: ['.md', '.markdown'],
  text: ['.txt', '.text'],
  html: ['.html', '.htm', '.xhtml'],
  pdf: ['.pdf'],
}

// Types object stores put on anything they cannot name (S3 defaults to binary/octet-stream): detect by extension.
const GENERIC_TYPES = new Set(['', 'application/octet-stream', 'binary/octet-stream'])
const KINDS = Object.keys(DOCUMENT_CONTENT_TYPES) as DocumentKind[]
const VALID = `valid content types: ${KINDS.flatMap((k) => DOCUMENT_CONTENT_TYPES[k]).join(', ')}; valid extensions: ${KINDS.flatMap((k) => DOCUMENT_EXTENSIONS[k]).join(', ')}`

function extensionKind(key: string): DocumentKind | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1).toLowerCase()
  const dot = name.lastIndexOf('.')
  if (dot < 0) return undefined
  const ext = name.slice(dot)
  return KINDS.find((k) => DOCUMENT_EXTENSIONS[k].includes(ext))
}

/**
 * Tells which kind of document an object is: by content type first, by the key's extension when the type is absent or
 * generic (`application/octet-stream`), and Markdown for `text/plain` objects named `*.md` (file stores often label
 * Markdown as plain text). Undefined when neither names a supported kind.
 * @param contentType the object's content type, if any
 * @param key the object's key
 */
export function detectDocumentKind(contentType: string | undefined, key: string): DocumentKind | undefined {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
  const byExt = extensionKind(key)
  if (GENERIC_TYPES.has(type)) return byExt
  if (type === 'text/plain' && byExt === 'markdown') return 'markdown'
  return KINDS.find((k) => DOCUMENT_CONTENT_TYPES[k].includes(type))
}

/** Builds the error every refusal throws: what was wrong with which key, and what would be valid. */
function refuse(
  key: string,
  reason: 'unsupported_type' | 'binary' | 'too_large' | 'unparseable',
  message: string,
  extra: Record<string, unknown> = {},
  cause?: unknown,
): SovraError {
  const code = reason === 'too_large' ? 'ERR_BODY_TOO_LARGE' : 'ERR_BAD_REQUEST'
  const status = reason === 'unsupported_type' || reason === 'binary' ? 415 : undefined
  return new SovraError(code, `Cannot index "${key}": ${message}`, {
    ...(status === undefined ? {} : { status }),
    ...(cause === undefined ? {} : { cause }),
    details: { key, reason, ...extra },
  })
}

/**
 * Parses a document's bytes into plain text and headings: Markdown, plain text and HTML as UTF-8 (a BOM is dropped),
 * PDF through unpdf (PDF.js built for serverless runtimes, loaded only for PDFs). Pure Web APIs: runs in an isolate.
 * Throws SovraError ERR_BAD_REQUEST (details.reason `unsupported_type`, `binary` or `unparseable`) or
 * ERR_BODY_TOO_LARGE (`too_large`), each naming the key and what is valid.
 * @param input the bytes, content type, key and size limit
 * @example
 * const doc = await parseDocument({ bytes: new TextEncoder().encode('# 休暇\n\n申請は2週間前まで。'), key: 'hr/leave.md' })
 * doc.headings // [{ level: 1, title: '休暇', offset: 0 }]
 */
export async function parseDocument(input: ParseInput): Promise<ParsedDocument> {
  const { bytes, key } = input
  const maxBytes = input.maxBytes ?? DEFAULT_MAX_DOCUMENT_BYTES
  if (bytes.byteLength > maxBytes) {
    throw refuse(key, 'too_large', `${bytes.byteLength} bytes is over the limit of ${maxBytes} bytes`, {
      bytes: bytes.byteLength,
      maxBytes,
    })
  }
  const kind = detectDocumentKind(input.contentType, key)
  if (kind === undefined) {
    throw refuse(
      key,
      'unsupported_type',
      `content type ${JSON.stringify(input.contentType ?? null)} with this name is not a supported document; ${VALID}`,
      { contentType: input.contentType ?? null },
    )
  }
  if (kind === 'pdf') return parsePdf(bytes, key)
  const source = decodeUtf8(bytes, key, kind)
  if (kind === 'markdown') return { ...parseMarkdown(source), parser: 'markdown@1' }
  if (kind === 'html') return { ...parseHtml(source), parser: 'html@1' }
  const out = new TextBuilder()
  for (const line of source.split('\n')) {
    if (line.trim() === '') out.blank()
    else out.line(line)
  }
  return { text: out.text, headings: [], parser: 'text@1' }
}

/** Decodes strict UTF-8 (BOM dropped, CRLF and CR to LF); bytes that are not text are refused, not guessed at. */
function decodeUtf8(bytes: Uint8Array, key: string, kind: DocumentKind): string {
  // A NUL byte never occurs in UTF-8 text documents; it is the cheapest sign of a binary file with a text name.
  const nul = bytes.indexOf(0)
  let text: string | undefined
  if (nul < 0) {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
    } catch {
      text = undefined
    }
  }
  if (text === undefined) {
    throw refuse(
      key,
      'binary',
      `the bytes are not UTF-8 text (${nul >= 0 ? `NUL byte at offset ${nul}` : 'invalid UTF-8'}), but its type says ${kind}; store text documents as UTF-8`,
      { kind },
    )
  }
  return text.replace(/\r\n?/g, '\n')
}

/**
 * Accumulates output lines: trailing spaces trimmed, runs of blank lines folded into one, headings recorded at
 * the offset where their title lands.
 */
class TextBuilder {
  text = ''
  readonly headings: Heading[] = []
  private gap = 0

  line(s: string): void {
    const t = s.replace(/[ \t]+$/, '')
    if (t.trim() === '') return this.blank()
    this.text += (this.text === '' ? '' : '\n'.repeat(this.gap)) + t
    this.gap = 1
  }

  blank(): void {
    if (this.text !== '') this.gap = 2
  }

  heading(level: number, title: string): void {
    const t = title.replace(/\s+/g, ' ').trim()
    if (t === '') return
    this.blank()
    this.headings.push({ level, title: t, offset: this.text === '' ? 0 : this.text.length + this.gap })
    this.line(t)
    this.blank()
  }
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/
const ATX = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/
const SETEXT = /^ {0,3}(=+|-+)[ \t]*$/
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/
const TABLE_RULE = /^ {0,3}\|?(?:[ \t]*:?-+:?[ \t]*\|)+(?:[ \t]*:?-+:?[ \t]*)?$/
const LINK_DEF = /^ {0,3}\[[^\]]+\]:[ \t]*\S+/
const BLOCK_START = /^ {0,3}(?:[-*+][ \t]|\d{1,9}[.)][ \t]|>|#|\||<)/

/** Markdown inline markup to text: images to alt text, links to their text, code spans, emphasis, raw tags. */
function mdInline(s: string): string {
  return s
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\](?:\([^)]*\)|\[[^\]]*\])/g, '$1')
    .replace(/<((?:https?|mailto):[^>\s]+)>/g, '$1')
    .replace(/(`+)(.+?)\1/g, (_m, _ticks: string, code: string) => code.trim())
    .replace(/(\*\*|__|~~)(?=\S)(.+?)(?<=\S)\1/g, '$2')
    .replace(/(^|[^\p{L}\p{N}*])\*(?=\S)(.+?)(?<=\S)\*/gu, '$1$2')
    .replace(/(^|[^\p{L}\p{N}_])_(?=\S)(.+?)(?<=\S)_(?![\p{L}\p{N}])/gu, '$1$2')
    .replace(/<\/?[A-Za-z][^>]*>/g, '')
    .replace(/\\([!-/:-@[-`{-~])/g, '$1')
}

/** CommonMark-ish block parsing: enough structure for headings and clean text, not a full renderer. */
function parseMarkdown(source: string): { text: string; headings: Heading[] } {
  const lines = source.replace(/<!--[\s\S]*?-->/g, '').split('\n')
  const out = new TextBuilder()
  let i = 0
  // YAML front matter is metadata, not content.
  if (lines[0] === '---') {
    const end = lines.indexOf('---', 1)
    if (end > 0) i = end + 1
  }
  let fence: string | undefined
  let prevText = false
  for (; i < lines.length; i++) {
    const line = lines[i] ?? ''
    const fenceMatch = FENCE.exec(line)
    if (fence !== undefined) {
      // Code keeps its text verbatim; only the fence lines go.
      const close = fenceMatch?.[1]
      if (close !== undefined && close[0] === fence[0] && close.length >= fence.length) {
        fence = undefined
        out.blank()
      } else out.line(line)
      continue
    }
    if (fenceMatch) {
      fence = fenceMatch[1]
      out.blank()
      prevText = false
      continue
    }
    const atx = ATX.exec(line)
    if (atx) {
      out.heading(atx[1]?.length ?? 1, mdInline(atx[2] ?? ''))
      prevText = false
      continue
    }
    const next = lines[i + 1] ?? ''
    const setext = SETEXT.exec(next)
    if (setext && !prevText && line.trim() !== '' && !BLOCK_START.test(line)) {
      out.heading(setext[1]?.[0] === '=' ? 1 : 2, mdInline(line))
      i++
      prevText = false
      continue
    }
    // A table's delimiter row is markup only; the rows around it stay one block.
    if (TABLE_RULE.test(line)) continue
    if (line.trim() === '' || RULE.test(line) || LINK_DEF.test(line)) {
      out.blank()
      prevText = false
      continue
    }
    const body = line.replace(/^ {0,3}(?:>[ \t]?)+/, '').replace(/^([ \t]*)[-*+][ \t]+/, '$1')
    out.line(mdInline(body))
    prevText = true
  }
  return { text: out.text, headings: out.headings }
}

const NAMED_ENTITIES: Readonly<Record<string, string>> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', shy: '', copy: '©', reg: '®', trade: '™',
  hellip: '…', mdash: '—', ndash: '–', lsquo: '‘', rsquo: '’', ldquo: '“', rdquo: '”', laquo: '«', raquo: '»',
  middot: '·', bull: '•', deg: '°', times: '×', divide: '÷', yen: '¥', euro: '€', pound: '£', sect: '§', para: '¶',
  eacute: 'é', egrave: 'è', agrave: 'à', ccedil: 'ç', auml: 'ä', ouml: 'ö', uuml: 'ü', szlig: 'ß', ensp: ' ', emsp: ' ', thinsp: ' ', zwnj: '', zwj: '',
} // prettier-ignore

/** Decodes HTML character references: numeric ones, and the named ones office documents use; others stay as written. */
export function decodeEntities(s: string): string {
  return s.replace(/&(#[xX][0-9a-fA-F]+|#\d+|[A-Za-z][A-Za-z0-9]*);/g, (m, ref: string) => {
    if (ref[0] !== '#') return NAMED_ENTITIES[ref] ?? m
    const cp = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10)
    // HTML maps NUL, surrogates and out-of-range references to U+FFFD (WHATWG HTML, "numeric character reference end state").
    return cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? '\uFFFD' : String.fromCodePoint(cp)
  })
}

// Elements whose content is never document text.
const HIDDEN = /<(script|style|noscript|template|head|svg|iframe|object)\b[^>]*>[\s\S]*?<\/\1\s*>/gi
const BLOCK_TAGS = new Set(
  'p div section article main header footer nav aside ul ol li dl dt dd table thead tbody tfoot tr blockquote pre figure figcaption form address hr h1 h2 h3 h4 h5 h6 details summary caption'.split(
    ' ',
  ),
)

/** HTML to text with a small tokenizer (no DOM exists in an isolate): block elements break paragraphs, h1-h6 are headings. */
function parseHtml(source: string): { text: string; headings: Heading[] } {
  const html = source.replace(/<!--[\s\S]*?-->/g, '').replace(HIDDEN, ' ')
  const out = new TextBuilder()
  let para = ''
  let heading: { level: number; title: string } | undefined
  let pre = 0
  const flush = (): void => {
    if (para === '') return
    const lines = decodeEntities(para).split('\n')
    for (const l of lines) out.line(pre > 0 ? l : l.trim())
    para = ''
  }
  const addText = (raw: string): void => {
    const t = pre > 0 ? raw : raw.replace(/\s+/g, ' ')
    if (heading) heading.title += t
    else para += para === '' || para.endsWith('\n') ? (pre > 0 ? t : t.replace(/^ /, '')) : t
  }
  const tag = /<(\/?)([A-Za-z][A-Za-z0-9]*)\b[^>]*>|<![^>]*>|<\?[^>]*>/g
  let last = 0
  for (let m = tag.exec(html); m !== null; m = tag.exec(html)) {
    addText(html.slice(last, m.index))
    last = tag.lastIndex
    const name = (m[2] ?? '').toLowerCase()
    const closing = m[1] === '/'
    if (/^h[1-6]$/.test(name)) {
      if (!closing) {
        flush()
        heading = { level: Number(name[1]), title: '' }
      } else if (heading) {
        out.heading(heading.level, decodeEntities(heading.title))
        heading = undefined
      }
    } else if (name === 'br') {
      if (heading) heading.title += ' '
      else para += '\n'
    } else if (name === 'td' || name === 'th') {
      if (closing) addText(' ')
    } else if (BLOCK_TAGS.has(name)) {
      if (!heading) {
        flush()
        if (name !== 'li' && name !== 'tr' && name !== 'dt' && name !== 'dd') out.blank()
      }
      if (name === 'pre') pre = Math.max(0, pre + (closing ? -1 : 1))
    }
  }
  addText(html.slice(last))
  if (heading) out.heading(heading.level, decodeEntities(heading.title))
  flush()
  return { text: out.text, headings: out.headings }
}

/** PDF text through unpdf, one page after another with a blank line between; PDF outlines are not read as headings. */
async function parsePdf(bytes: Uint8Array, key: string): Promise<ParsedDocument> {
  // The magic number may follow some junk, but must be in the first 1024 bytes (PDF 32000-1:2008, 7.5.2; Acrobat's rule).
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 1024))
  if (!head.includes('%PDF-')) {
    throw refuse(key, 'binary', 'its type says PDF but the bytes do not start with a %PDF- header', { kind: 'pdf' })
  }
  let pages: string[]
  try {
    // Loaded on first use: PDF.js is ~2 MB of bundle that Markdown and HTML documents never need.
    const { getDocumentProxy, extractText } = await import('unpdf')
    // PDF.js takes ownership of (transfers) the buffer it is given: hand it a copy, never the caller's bytes.
    const doc = await getDocumentProxy(bytes.slice(), { verbosity: 0 })
    try {
      pages = (await extractText(doc, { mergePages: false })).text
    } finally {
      await doc.loadingTask.destroy()
    }
  } catch (error) {
    const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
    throw refuse(key, 'unparseable', `the PDF could not be read (${why}); re-export it as PDF/A or as text`, {}, error)
  }
  const out = new TextBuilder()
  for (const page of pages) {
    for (const line of page.replace(/\r\n?/g, '\n').split('\n')) out.line(line.trim())
    out.blank()
  }
  return { text: out.text, headings: [], parser: 'pdf@1' }
}
