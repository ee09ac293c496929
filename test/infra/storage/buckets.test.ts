import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Bucket, BucketListOptions, BucketObject } from '../../../runtime/core/ports.ts'
import type { ObjectEvent } from '../../../runtime/core/handlers.ts'
import { FsBucket } from '../../../infra/storage/fs-bucket.ts'
import { createS3Client, S3Bucket } from '../../../infra/storage/s3-bucket.ts'
import { startTestS3, type TestS3 } from '../../support/s3.ts'
import { bucketSuite } from './bucket-suite.ts'
import { waitFor } from '../../helpers.ts'

const FS_ROOT = mkdtempSync(join(tmpdir(), 'sovra-fsb-'))
afterAll(() => rmSync(FS_ROOT, { recursive: true, force: true }))
let fsCount = 0
bucketSuite('fs', () => new FsBucket(`suite-${++fsCount}`, FS_ROOT))

/** Puts every key under a prefix: the suite's keys stay apart in one shared bucket of a real MinIO. */
class Prefixed implements Bucket {
  constructor(
    readonly inner: Bucket,
    readonly prefix: string,
  ) {}
  put: Bucket['put'] = async (key, value, options) =>
    this.#strip(await this.inner.put(this.prefix + key, value, options))
  head: Bucket['head'] = async (key) => {
    const m = await this.inner.head(this.prefix + key)
    return m === null ? null : this.#strip(m)
  }
  get: Bucket['get'] = async (key) => {
    const o = await this.inner.get(this.prefix + key)
    return o === null ? null : Object.assign(o, { key })
  }
  delete: Bucket['delete'] = (keys) =>
    this.inner.delete((typeof keys === 'string' ? [keys] : keys).map((k) => this.prefix + k))
  list = async (options: BucketListOptions = {}) => {
    const r = await this.inner.list({ ...options, prefix: this.prefix + (options.prefix ?? '') })
    return {
      ...r,
      objects: r.objects.map((o) => this.#strip(o)),
      delimitedPrefixes: r.delimitedPrefixes.map((p) => p.slice(this.prefix.length)),
    }
  }
  #strip(m: BucketObject): BucketObject {
    return { ...m, key: m.key.slice(this.prefix.length) }
  }
}

let s3: TestS3
const S3_BUCKETS = Array.from({ length: 8 }, (_, i) => `suite-${i + 1}`)
let s3Count = 0
describe('s3 (s3rver on 127.0.0.1, or MinIO via SOVRA_TEST_S3_ENDPOINT)', () => {
  beforeAll(async () => {
    s3 = await startTestS3(S3_BUCKETS)
  })
  afterAll(() => s3.stop())
  bucketSuite('s3', () => {
    const n = ++s3Count
    if (s3.external) {
      const shared = process.env['SOVRA_TEST_S3_BUCKET'] ?? 'sovra-test'
      return new Prefixed(new S3Bucket(shared, createS3Client(s3.settings)), `run-${Date.now()}-${n}/`)
    }
    return new S3Bucket(`suite-${n}`, createS3Client(s3.settings))
  })
})

describe('S3Bucket specifics', () => {
  it('uploads a body over the multipart threshold in parts and reads it back whole', async () => {
    const s3x = await startTestS3(['multipart'])
    try {
      const bucket = s3x.external
        ? new S3Bucket(process.env['SOVRA_TEST_S3_BUCKET'] ?? 'sovra-test', createS3Client(s3x.settings))
        : new S3Bucket('multipart', createS3Client(s3x.settings))
      const chunk = new Uint8Array(1024 * 1024).map((_, i) => (i * 7) % 256)
      let sent = 0
      const stream = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent === 9) return c.close()
          sent++
          c.enqueue(chunk.slice())
        },
      })
      const put = await bucket.put(`big-${Date.now()}.bin`, stream, { contentType: 'application/octet-stream' })
      expect(put.size).toBe(9 * 1024 * 1024)
      if (s3x.external) {
        // On MinIO/S3 a multipart etag is "<md5 of the part md5s>-<parts>", not the body's MD5.
        expect(put.etag).toMatch(/-2$/)
      } else {
        // s3rver reports a completed multipart upload as its own event (and computes a plain etag).
        await waitFor(() =>
          s3x.events.some((e) => /ObjectCreated:(Post|CompleteMultipartUpload)/.test(String(e['eventName']))),
        )
      }
      const got = new Uint8Array(await (await bucket.get(put.key))!.arrayBuffer())
      expect(got.byteLength).toBe(9 * 1024 * 1024)
      expect(got.subarray(8 * 1024 * 1024, 8 * 1024 * 1024 + 16)).toEqual(chunk.subarray(0, 16))
    } finally {
      await s3x.stop()
    }
  }, 60_000)
})

describe('FsBucket specifics', () => {
  it('reports created and removed events with size, etag, metadata and an increasing sequencer', async () => {
    const events: ObjectEvent[] = []
    const b = new FsBucket('events', FS_ROOT, { onEvent: (e) => void events.push(e) })
    await b.put('policies/a.md', 'v1', { contentType: 'text/markdown', customMetadata: { acl: 'legal' } })
    await b.put('policies/a.md', 'v2')
    await b.delete('policies/a.md')
    await b.delete('policies/a.md')
    expect(events.map((e) => [e.type, e.key, e.eventName])).toEqual([
      ['created', 'policies/a.md', 's3:ObjectCreated:Put'],
      ['created', 'policies/a.md', 's3:ObjectCreated:Put'],
      ['removed', 'policies/a.md', 's3:ObjectRemoved:Delete'],
    ])
    expect(events[0]).toMatchObject({
      bucket: 'events',
      size: 2,
      contentType: 'text/markdown',
      metadata: { acl: 'legal' },
      source: 'fs',
    })
    const seq = events.map((e) => e.sequencer as string)
    expect([...seq].sort()).toEqual(seq)
    expect(new Set(seq).size).toBe(3)
  })

  it('leaves no temp file behind when a streamed put fails midway, and keeps the old object', async () => {
    const b = new FsBucket('atomic', FS_ROOT)
    await b.put('doc', 'original')
    const failing = new ReadableStream<Uint8Array>({
      pull(c) {
        c.enqueue(new TextEncoder().encode('partial'))
        c.error(new Error('client went away'))
      },
    })
    await expect(b.put('doc', failing)).rejects.toThrowError(/client went away/)
    expect(await (await b.get('doc'))?.text()).toBe('original')
    expect(readdirSync(join(FS_ROOT, 'atomic', '.tmp'))).toEqual([])
  })

  it('refuses an invalid bucket name', () => {
    expect(() => new FsBucket('Bad_Name', FS_ROOT)).toThrowError(/invalid bucket name "Bad_Name"/)
  })
})
