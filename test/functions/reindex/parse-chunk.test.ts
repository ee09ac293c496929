import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'
import { describe, expect, it } from 'vitest'
import { isSovraError } from 'sovra'
import { bundleOptions } from '../../../runtime/isolate/bundle.ts'
import { detectDocumentKind, parseDocument, type ParsedDocument } from '../../../functions/reindex/parse.ts'
import { CHUNKER_VERSION, chunkDocument, estimateTokens, type Chunk } from '../../../functions/reindex/chunk.ts'

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

const POLICY_MD = `\uFEFF---
title: 就業規則
---
# 就業規則

この規則は全従業員に適用されます。**重要**な点は[人事ポータル](https://hr.example/portal)を参照してください。

## 育児休業

育児休業の申請は、休業開始予定日の1か月前までに人事部へ提出してください。申請書には、子の氏名、生年月日、休業期間を記載します。

期間の延長を希望する場合は、終了予定日の2週間前までに申し出てください。延長は最長で子が2歳に達するまでです。

### 申請書の書式

\`\`\`text
様式第3号: 育児休業申請書
\`\`\`

Parental Leave
--------------

Employees may take *parental leave* after one year of service. Submit the form to HR at least one month ahead.
Extensions must be requested two weeks before the planned end date.

### Deadlines ###

> Late requests are accepted only for births earlier than expected.

# Remote Work

Remote work requires a manager's approval. Use the \`remote-request\` form, see <https://hr.example/remote>.
`

/** Parses and chunks a Markdown string. */
async function mdChunks(
  md: string,
  opts: { maxTokens: number; overlapTokens: number; tokenize?: (t: string) => number },
): Promise<{ doc: ParsedDocument; chunks: Chunk[] }> {
  const doc = await parseDocument({ bytes: utf8(md), key: 'policies/rules.md' })
  return { doc, chunks: await chunkDocument(doc, opts) }
}

/** Catches what a promise rejects with. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => expect.fail('expected a rejection'),
    (e: unknown) => e,
  )
}

/** A one-page PDF written by hand (Helvetica, one text line per entry), with a correct xref table. */
function tinyPdf(lines: string[]): Uint8Array {
  const content = lines.map((l, i) => `BT /F1 12 Tf 72 ${720 - i * 20} Td (${l}) Tj ET`).join('\n')
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ]
  let pdf = '%PDF-1.4\n'
  const offsets = objects.map((o, i) => {
    const at = pdf.length
    pdf += `${i + 1} 0 obj\n${o}\nendobj\n`
    return at
  })
  const xref = pdf.length
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`
  pdf += offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`
  return utf8(pdf)
}

describe('parseDocument', () => {
  it('parses Markdown: ATX and setext headings at their offsets, markup stripped, code text and link text kept', async () => {
    const doc = await parseDocument({ bytes: utf8(POLICY_MD), key: 'policies/rules.md' })
    expect(doc.parser).toBe('markdown@1')
    expect(doc.headings.map((h) => [h.level, h.title])).toEqual([
      [1, '就業規則'],
      [2, '育児休業'],
      [3, '申請書の書式'],
      [2, 'Parental Leave'],
      [3, 'Deadlines'],
      [1, 'Remote Work'],
    ])
    for (const h of doc.headings) expect(doc.text.slice(h.offset, h.offset + h.title.length)).toBe(h.title)
    expect(doc.text.startsWith('就業規則\n\n')).toBe(true) // BOM and front matter gone
    expect(doc.text).toContain('重要な点は人事ポータルを参照してください。')
    expect(doc.text).toContain('様式第3号: 育児休業申請書')
    expect(doc.text).toContain('Use the remote-request form, see https://hr.example/remote.')
    expect(doc.text).toContain('Late requests are accepted')
    expect(doc.text).not.toMatch(/```|\*\*|\]\(|^#|^> |^-{3,}/m)
  })

  it('parses HTML: scripts and styles dropped, entities decoded, h1-h6 as headings, blocks as paragraphs', async () => {
    const html = `<!doctype html><html><head><title>x</title><style>p { color: red }</style></head><body>
      <script>document.write('secret')</script><!-- hidden -->
      <h1>Leave &amp; Absence</h1><p>Tom &lt;3 Jerry&nbsp;&#x41;&#66; caf&eacute; &unknown;</p>
      <h3>申請 <em>期限</em></h3><ul><li>one</li><li>two</li></ul><p>end<br>line</p></body></html>`
    const doc = await parseDocument({ bytes: utf8(html), key: 'a/page', contentType: 'text/html; charset=utf-8' })
    expect(doc.parser).toBe('html@1')
    expect(doc.text).toBe('Leave & Absence\n\nTom <3 Jerry AB café &unknown;\n\n申請 期限\n\none\ntwo\n\nend\nline')
    expect(doc.headings).toEqual([
      { level: 1, title: 'Leave & Absence', offset: 0 },
      { level: 3, title: '申請 期限', offset: doc.text.indexOf('申請') },
    ])
  })

  it('parses plain text with CRLF line ends and a BOM', async () => {
    const doc = await parseDocument({ bytes: utf8('\uFEFFline one\r\nline two\r\n\r\n\r\npara two\r\n'), key: 'a.txt' })
    expect(doc).toEqual({ text: 'line one\nline two\n\npara two', headings: [], parser: 'text@1' })
  })

  it('detects the kind by content type first, then by extension', () => {
    expect(detectDocumentKind('text/markdown; charset=utf-8', 'x.txt')).toBe('markdown')
    expect(detectDocumentKind('text/plain', 'notes/a.md')).toBe('markdown')
    expect(detectDocumentKind('text/plain', 'notes/a.html')).toBe('text')
    expect(detectDocumentKind('application/octet-stream', 'a/B.HTM')).toBe('html')
    expect(detectDocumentKind(undefined, 'a/report.pdf')).toBe('pdf')
    expect(detectDocumentKind('image/png', 'a.md')).toBeUndefined()
    expect(detectDocumentKind(undefined, 'a.docx')).toBeUndefined()
  })

  it('reads the text of a PDF through unpdf', async () => {
    const doc = await parseDocument({ bytes: tinyPdf(['Leave Policy', 'Apply two weeks ahead.']), key: 'p/leave.pdf' })
    expect(doc).toEqual({ text: 'Leave Policy\nApply two weeks ahead.', headings: [], parser: 'pdf@1' })
  })

  it('refuses binary, oversize, unknown and unparseable documents with the key and what is valid', async () => {
    const binary = await rejection(
      parseDocument({ bytes: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 1]), key: 'x.md' }),
    )
    expect(isSovraError(binary) && binary.code).toBe('ERR_BAD_REQUEST')
    expect(isSovraError(binary) && binary.details).toMatchObject({ key: 'x.md', reason: 'binary' })
    expect((binary as Error).message).toMatch(/"x\.md".*NUL byte at offset 4/)

    const latin1 = await rejection(parseDocument({ bytes: new Uint8Array([0x63, 0x61, 0x66, 0xe9]), key: 'l.txt' }))
    expect((latin1 as Error).message).toMatch(/invalid UTF-8/)

    const big = await rejection(parseDocument({ bytes: utf8('# a\n\nbody'), key: 'big.md', maxBytes: 4 }))
    expect(isSovraError(big) && big.code).toBe('ERR_BODY_TOO_LARGE')
    expect(isSovraError(big) && big.details).toEqual({ key: 'big.md', reason: 'too_large', bytes: 9, maxBytes: 4 })

    const unknown = await rejection(parseDocument({ bytes: utf8('x'), key: 'a.docx', contentType: 'image/png' }))
    expect(isSovraError(unknown) && unknown.status).toBe(415)
    expect((unknown as Error).message).toMatch(/"a\.docx".*"image\/png".*valid content types: text\/markdown.*\.pdf/)

    const notPdf = await rejection(parseDocument({ bytes: utf8('hello'), key: 'fake.pdf' }))
    expect(isSovraError(notPdf) && notPdf.details).toMatchObject({ reason: 'binary' })

    const broken = await rejection(parseDocument({ bytes: utf8('%PDF-1.4\ngarbage'), key: 'broken.pdf' }))
    expect(isSovraError(broken) && broken.details).toMatchObject({ key: 'broken.pdf', reason: 'unparseable' })
  })
})

describe('estimateTokens', () => {
  it('counts each CJK character, each word and each punctuation mark as one token', () => {
    expect(estimateTokens('育児休業の申請。')).toBe(8)
    expect(estimateTokens('Submit the form, please.')).toBe(6)
    expect(estimateTokens('育児休業 applies to all staff.')).toBe(9)
    expect(estimateTokens('  \n ')).toBe(0)
  })
})

describe('chunkDocument', () => {
  const opts = { maxTokens: 40, overlapTokens: 8 }

  it('gives every chunk the heading path of its section, and never spans two sections', async () => {
    const { doc, chunks } = await mdChunks(POLICY_MD, opts)
    const paths = [...new Set(chunks.map((c) => c.headingPath.join(' > ')))]
    expect(paths).toEqual([
      '就業規則',
      '就業規則 > 育児休業',
      '就業規則 > 育児休業 > 申請書の書式',
      '就業規則 > Parental Leave',
      '就業規則 > Parental Leave > Deadlines',
      'Remote Work',
    ])
    for (const c of chunks) {
      const h = [...doc.headings].reverse().find((x) => x.offset <= c.span[0])
      expect(c.headingPath.at(-1)).toBe(h?.title)
      const next = doc.headings.find((x) => x.offset > c.span[0])
      expect(c.span[1]).toBeLessThanOrEqual(next?.offset ?? doc.text.length)
    }
    expect(chunks.map((c) => c.ordinal)).toEqual(chunks.map((_, i) => i))
    expect(CHUNKER_VERSION).toBe('headings@1')
  })

  it('maps each span back to its text exactly, overlap included, and covers every word once outside overlaps', async () => {
    const { doc, chunks } = await mdChunks(POLICY_MD, opts)
    for (const c of chunks) expect(doc.text.slice(...c.span)).toBe(c.text)
    let covered = ''
    let prev: Chunk | undefined
    for (const c of chunks) {
      const own = doc.text.slice(c.span[0] + c.overlap, c.span[1])
      if (c.overlap > 0 && prev !== undefined) {
        // The overlap is the previous chunk's tail, in the same section.
        expect(prev.text.endsWith(c.text.slice(0, c.overlap).trimEnd())).toBe(true)
        expect(c.span[0]).toBeLessThan(prev.span[1])
        expect(c.headingPath).toEqual(prev.headingPath)
      }
      covered += own
      prev = c
    }
    // Outside overlaps the chunks hold the whole text, in order, except whitespace between them.
    expect(covered.replace(/\s/g, '')).toBe(doc.text.replace(/\s/g, ''))
  })

  it('keeps every chunk within maxTokens and repeats up to overlapTokens of the previous chunk', async () => {
    for (const tokenize of [undefined, (t: string) => Array.from(t).length]) {
      const { chunks } = await mdChunks(POLICY_MD, tokenize === undefined ? opts : { ...opts, tokenize })
      const count = tokenize ?? estimateTokens
      expect(chunks.length).toBeGreaterThan(6)
      for (const c of chunks) {
        expect(count(c.text)).toBeLessThanOrEqual(opts.maxTokens)
        expect(c.tokens).toBe(count(c.text))
        expect(count(c.text.slice(0, c.overlap))).toBeLessThanOrEqual(opts.overlapTokens)
      }
      // The long sections split into several chunks, each after the first opening with overlap.
      const leave = chunks.filter((c) => c.headingPath.join('>') === '就業規則>育児休業')
      expect(leave.length).toBeGreaterThan(1)
      for (const c of leave.slice(1)) expect(c.overlap).toBeGreaterThan(0)
      expect(chunks.find((c) => c.headingPath.length === 1 && c.headingPath[0] === 'Remote Work')?.overlap).toBe(0)
    }
  })

  it('splits a paragraph with no breaks at sentences, clauses and finally tokens', async () => {
    const long = `# 長文\n\n${'申請は人事部へ提出してください、期限は厳守です。'.repeat(6)}${'あ'.repeat(50)}`
    const { doc, chunks } = await mdChunks(long, { maxTokens: 32, overlapTokens: 4 })
    for (const c of chunks) {
      expect(estimateTokens(c.text)).toBeLessThanOrEqual(32)
      expect(doc.text.slice(...c.span)).toBe(c.text)
    }
    expect(chunks.some((c) => c.text.endsWith('。') || c.text.endsWith('、'))).toBe(true)
  })

  it('hashes chunk text with SHA-256: stable for the same input, and an edit changes only its own chunk', async () => {
    const doc = (b: string): string =>
      `# A\n\nAlpha section text stays.\n\n# B\n\n${b}\n\n# C\n\nGamma section text stays.\n\n## C1\n\n${'Long paragraph number one here. '.repeat(6)}\n\nLast words.`
    const before = await mdChunks(doc('Beta holds the original wording.'), opts)
    const again = await mdChunks(doc('Beta holds the original wording.'), opts)
    const after = await mdChunks(doc('Beta holds the revised wording.'), opts)
    expect(again.chunks.map((c) => c.contentSha256)).toEqual(before.chunks.map((c) => c.contentSha256))
    for (const c of before.chunks) {
      expect(c.contentSha256).toBe(createHash('sha256').update(c.text, 'utf8').digest('hex'))
    }
    expect(after.chunks.length).toBe(before.chunks.length)
    const changed = after.chunks.filter((c, i) => c.contentSha256 !== before.chunks[i]?.contentSha256)
    expect(changed.map((c) => c.text)).toEqual(['B\n\nBeta holds the revised wording.'])
  })

  it('refuses token bounds that cannot work', async () => {
    const doc = await parseDocument({ bytes: utf8('text'), key: 'a.txt' })
    const e = await rejection(chunkDocument(doc, { maxTokens: 40, overlapTokens: 20 }))
    expect(isSovraError(e) && e.code).toBe('ERR_CONFIG')
    expect((e as Error).message).toMatch(/overlapTokens.*received 20/)
    await expect(chunkDocument(doc, { maxTokens: 2.5, overlapTokens: 0 })).rejects.toThrow(/maxTokens/)
  })
})

describe('reindex parse and chunk modules', () => {
  it('bundle for an isolate (platform-neutral, no node: modules), unpdf included', async () => {
    const entry = fileURLToPath(new URL('../../../functions/reindex/chunk.ts', import.meta.url))
    const parse = fileURLToPath(new URL('../../../functions/reindex/parse.ts', import.meta.url))
    const result = await esbuild.build({ ...bundleOptions(entry), entryPoints: [entry, parse], outdir: '/out' })
    expect(result.errors).toEqual([])
    const code = result.outputFiles?.map((f) => f.text).join('\n') ?? ''
    expect(code).toContain('getDocumentProxy')
    expect(code).not.toMatch(/from\s*["']node:/)
  })
})
