import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  createExecutionContext,
  createScheduledController,
  minioRecord,
  objectEvent,
  waitOnExecutionContext,
} from 'sovra/testing'
import { FsBucket } from '../../../infra/storage/fs-bucket.ts'
import { normalizeRecords } from '../../../triggers/object/normalize.ts'
import indexer from '../../fixtures/testing-kit/indexer.ts'
import nightly from '../../fixtures/testing-kit/nightly.ts'

// Handlers called directly, as with cloudflare:test's helpers: no host, buckets in a temporary folder.
const dir = mkdtempSync(join(tmpdir(), 'sovra-kit-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const env = { DOCS: new FsBucket('docs', dir), INDEX: new FsBucket('index', dir) }

describe('createExecutionContext / waitOnExecutionContext', () => {
  it('waits for waitUntil work, including work registered while waiting', async () => {
    const ctx = createExecutionContext()
    const done: string[] = []
    ctx.waitUntil(
      new Promise<void>((resolve) =>
        setTimeout(() => {
          done.push('first')
          ctx.waitUntil(new Promise<void>((r) => setTimeout(() => r(void done.push('second')), 5)))
          resolve()
        }, 5),
      ),
    )
    await waitOnExecutionContext(ctx)
    expect(done).toEqual(['first', 'second'])
  })

  it('rethrows one rejection as is and several as an AggregateError', async () => {
    const one = createExecutionContext()
    one.waitUntil(Promise.reject(new Error('boom')))
    await expect(waitOnExecutionContext(one)).rejects.toThrowError('boom')
    const two = createExecutionContext()
    two.waitUntil(Promise.reject(new Error('a')))
    two.waitUntil(Promise.reject(new Error('b')))
    const error = await waitOnExecutionContext(two).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AggregateError)
    expect((error as AggregateError).errors.map((e: Error) => e.message)).toEqual(['a', 'b'])
  })

  it('refuses a context it did not make', async () => {
    const foreign = { ...createExecutionContext() }
    await expect(waitOnExecutionContext(foreign)).rejects.toThrowError(/made by createExecutionContext\(\)/)
  })

  it('keeps waitForAll and the invocation and deadline options', async () => {
    const ctx = createExecutionContext({ timeoutMs: 1000, invocation: { function: 'indexer', trigger: 'object' } })
    expect(ctx.invocation).toMatchObject({ function: 'indexer', trigger: 'object', version: 'test' })
    expect(ctx.deadline - Date.now()).toBeLessThanOrEqual(1000)
    ctx.waitUntil(Promise.reject(new Error('late')))
    await expect(ctx.waitForAll()).rejects.toThrowError('late')
  })
})

describe('createScheduledController', () => {
  it("takes cloudflare:test's options (a Date or epoch ms) and defaults", () => {
    const at = new Date('2026-11-27T17:00:00Z')
    expect(createScheduledController({ scheduledTime: at, cron: '0 2 * * *' })).toMatchObject({
      type: 'scheduled',
      scheduledTime: at.getTime(),
      cron: '0 2 * * *',
      noRetryCalled: false,
    })
    const before = Date.now()
    const c = createScheduledController()
    expect(c.cron).toBe('')
    expect(c.scheduledTime).toBeGreaterThanOrEqual(before)
    expect(() => createScheduledController({ scheduledTime: Number.NaN })).toThrowError(/received NaN/)
  })

  it('runs a scheduled handler directly and tells whether it called noRetry()', async () => {
    const controller = createScheduledController({
      scheduledTime: Date.parse('2026-11-27T17:00:00Z'),
      cron: '0 2 * * *',
    })
    const ctx = createExecutionContext()
    await nightly.scheduled?.(controller, env, ctx)
    await waitOnExecutionContext(ctx)
    expect(await (await env.INDEX.get(`runs/${Date.parse('2026-11-27T17:00:00Z')}`))?.text()).toBe('0 2 * * * 0')
    expect(controller.noRetryCalled).toBe(false)

    await env.INDEX.put('config/fail-nightly', 'no-retry')
    const failing = createScheduledController({ cron: '0 2 * * *' })
    await expect(nightly.scheduled?.(failing, env, createExecutionContext())).rejects.toThrowError(/on purpose/)
    expect(failing.noRetryCalled).toBe(true)
    await env.INDEX.delete('config/fail-nightly')
  })
})

describe('objectEvent', () => {
  it('builds what a MinIO webhook delivers, through the host normaliser', () => {
    const event = objectEvent({
      bucket: 'docs',
      key: 'policies/a b+c.md',
      action: 'put',
      body: 'hello',
      contentType: 'text/markdown',
      metadata: { owner: 'legal' },
    })
    expect(event).toEqual({
      type: 'created',
      bucket: 'docs',
      key: 'policies/a b+c.md',
      size: 5,
      etag: '5d41402abc4b2a76b9719d911017c592', // MD5 of "hello", as S3 computes it
      versionId: undefined,
      sequencer: expect.stringMatching(/^[0-9A-F]{16}$/),
      contentType: 'text/markdown',
      metadata: { owner: 'legal' },
      eventName: 's3:ObjectCreated:Put',
      time: expect.any(String),
      source: 'minio',
    })
    // The record is MinIO's own shape: the key query-escaped, metadata with its header prefix.
    const record = minioRecord({
      bucket: 'docs',
      key: 'policies/a b+c.md',
      action: 'put',
      metadata: { owner: 'legal' },
    })
    expect(record).toMatchObject({
      eventName: 's3:ObjectCreated:Put',
      s3: { object: { key: 'policies/a+b%2Bc.md', userMetadata: { 'X-Amz-Meta-owner': 'legal' } } },
    })
    expect(normalizeRecords([record], 'minio')[0]?.key).toBe('policies/a b+c.md')
  })

  it('orders successive events on a key and builds deletes without size or etag', () => {
    const a = objectEvent({ bucket: 'docs', key: 'k', action: 'put' })
    const b = objectEvent({ bucket: 'docs', key: 'k', action: 'delete' })
    expect((b.sequencer ?? '') > (a.sequencer ?? '')).toBe(true)
    expect(b).toMatchObject({ type: 'removed', eventName: 's3:ObjectRemoved:Delete', size: undefined, etag: undefined })
    expect(() => objectEvent({ bucket: 'docs', key: 'k', action: 'copy' as 'put' })).toThrowError(
      /action must be "put" or "delete", received "copy"/,
    )
  })

  it('has the shape of the events an fs bucket write produces', async () => {
    const seen: unknown[] = []
    const docs = new FsBucket('docs', dir, { onEvent: (e) => void seen.push(e) })
    await docs.put('same.md', 'hello', { contentType: 'text/markdown' })
    const built = objectEvent({
      bucket: 'docs',
      key: 'same.md',
      action: 'put',
      body: 'hello',
      contentType: 'text/markdown',
    })
    // Same fields and values; only where it came from, when, and its place in the order differ.
    expect(seen[0]).toMatchObject({ source: 'fs' })
    expect(built).toEqual({ ...(seen[0] as object), sequencer: built.sequencer, time: built.time, source: 'minio' })
  })

  it('drives an object handler directly', async () => {
    await env.DOCS.put('direct.md', 'direct')
    const ctx = createExecutionContext({ invocation: { trigger: 'object' } })
    await indexer.object?.(objectEvent({ bucket: 'docs', key: 'direct.md', action: 'put' }), env, ctx)
    await waitOnExecutionContext(ctx)
    expect(await (await env.INDEX.get('entries/direct.md'))?.text()).toBe('DIRECT')
  })
})
