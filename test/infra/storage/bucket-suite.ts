import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { Bucket } from '../../../runtime/core/ports.ts'

/**
 * The behaviour every Bucket adapter shares (fs, S3/MinIO): one suite, each adapter supplies a fresh bucket.
 * @param name the adapter, for the describe line
 * @param bucket returns a bucket to test (empty, or with keys under a unique prefix)
 */
export function bucketSuite(name: string, bucket: () => Bucket & { readonly prefix?: string }): void {
  describe(`Bucket adapter: ${name}`, () => {
    const md5 = (b: Uint8Array | string) => createHash('md5').update(b).digest('hex')

    it('puts and gets text with content type, user metadata and an MD5 etag', async () => {
      const b = bucket()
      const put = await b.put('docs/a.md', '# 就業規則', {
        httpMetadata: { contentType: 'text/markdown' },
        customMetadata: { owner: 'legal', acl: 'grp-legal' },
      })
      expect(put).toMatchObject({
        key: 'docs/a.md',
        size: Buffer.byteLength('# 就業規則'),
        etag: md5('# 就業規則'),
        httpEtag: `"${md5('# 就業規則')}"`,
      })
      const got = await b.get('docs/a.md')
      expect(got).not.toBeNull()
      expect(got?.httpMetadata.contentType).toBe('text/markdown')
      expect(got?.customMetadata).toEqual({ owner: 'legal', acl: 'grp-legal' })
      expect(await got?.text()).toBe('# 就業規則')
      await expect(got?.text()).rejects.toThrowError(/already been read/)
      const head = await b.head('docs/a.md')
      expect(head?.etag).toBe(md5('# 就業規則'))
      expect(head?.uploaded).toBeInstanceOf(Date)
    })

    it('puts bytes, JSON, streams and empty bodies', async () => {
      const b = bucket()
      const bytes = new Uint8Array(4096).map((_, i) => i % 251)
      await b.put('bin/one', bytes)
      expect(new Uint8Array((await (await b.get('bin/one'))?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(bytes)
      await b.put('json/x', JSON.stringify({ a: [1, 2] }))
      expect(await (await b.get('json/x'))?.json()).toEqual({ a: [1, 2] })
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode('part1-'))
          c.enqueue(new TextEncoder().encode('part2'))
          c.close()
        },
      })
      const s = await b.put('stream/x', stream)
      expect(s.size).toBe(11)
      expect(await (await b.get('stream/x'))?.text()).toBe('part1-part2')
      const empty = await b.put('empty', '')
      expect(empty.size).toBe(0)
      expect(await (await b.get('empty'))?.text()).toBe('')
    })

    it('overwrites, deletes (one or many), and answers null for missing keys', async () => {
      const b = bucket()
      await b.put('k', 'v1')
      await b.put('k', 'v2')
      expect(await (await b.get('k'))?.text()).toBe('v2')
      await b.put('k2', 'x')
      await b.delete(['k', 'k2'])
      expect(await b.get('k')).toBeNull()
      expect(await b.head('k2')).toBeNull()
      await b.delete('never-there')
    })

    it('lists by prefix and delimiter, in pages with a cursor', async () => {
      const b = bucket()
      const keys = ['p/a/1', 'p/a/2', 'p/b', 'p/c/1', 'p/d', 'q/x']
      for (const k of keys) await b.put(k, k)
      const all = await b.list({ prefix: 'p/' })
      expect(all.objects.map((o) => o.key)).toEqual(['p/a/1', 'p/a/2', 'p/b', 'p/c/1', 'p/d'])
      expect(all.truncated).toBe(false)
      const delimited = await b.list({ prefix: 'p/', delimiter: '/' })
      expect(delimited.objects.map((o) => o.key)).toEqual(['p/b', 'p/d'])
      expect(delimited.delimitedPrefixes).toEqual(['p/a/', 'p/c/'])
      const seen: string[] = []
      let cursor: string | undefined
      for (let page = 0; page < 10; page++) {
        const r = await b.list({ prefix: 'p/', limit: 2, ...(cursor === undefined ? {} : { cursor }) })
        seen.push(...r.objects.map((o) => o.key))
        if (!r.truncated) break
        expect(r.objects).toHaveLength(2)
        cursor = r.cursor
      }
      expect(seen).toEqual(['p/a/1', 'p/a/2', 'p/b', 'p/c/1', 'p/d'])
    })

    it('refuses bad keys and bad input with the value and the rule', async () => {
      const b = bucket()
      await expect(b.put('../etc/passwd', 'x')).rejects.toThrowError(
        /invalid object key "\.\.\/etc\/passwd": "\." and "\.\." path segments/,
      )
      await expect(b.put('/abs', 'x')).rejects.toThrowError(/absolute paths are not keys/)
      await expect(b.put('x'.repeat(1025), 'x')).rejects.toThrowError(/1025 UTF-8 bytes; the limit is 1024/)
      await expect(b.get('')).rejects.toThrowError(/non-empty/)
      await expect(b.put('m', 'x', { customMetadata: { big: 'y'.repeat(3000) } })).rejects.toThrowError(
        /S3 allows 2048/,
      )
      await expect(b.list({ limit: 0 })).rejects.toThrowError(/limit must be an integer from 1 to 1000, received 0/)
      expect(await b.head('m')).toBeNull()
    })

    it('keeps long and unusual keys apart', async () => {
      const b = bucket()
      // ~930 UTF-8 bytes in segments of 180: MinIO (and s3rver) store segments as file names, 255 bytes at most.
      const long = `deep/${Array.from({ length: 5 }, (_, i) => `${i}${'長'.repeat(60)}`).join('/')}`
      await b.put(long, 'long')
      await b.put('sp ace+plus%pct', 'odd')
      expect(await (await b.get(long))?.text()).toBe('long')
      expect(await (await b.get('sp ace+plus%pct'))?.text()).toBe('odd')
      const listed = (await b.list({ prefix: 'deep/' })).objects.map((o) => o.key)
      expect(listed).toEqual([long])
    })
  })
}
