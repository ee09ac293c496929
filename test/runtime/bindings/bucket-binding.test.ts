import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestHost, type TestHost } from '../../../runtime/testing/index.ts'
import { loadConfig } from '../../../runtime/config/load.ts'
import type { ConfigError } from '../../../runtime/config/diagnostics.ts'
import { startTestS3, type TestS3 } from '../../support/s3.ts'
import { tempProject, withFixtures } from '../../helpers.ts'

const CONFIG = `
[[functions]]
name = "docs"
main = "fixtures/docs.ts"
routes = ["/docs", "/docs/*"]

[[functions.r2_buckets]]
binding = "DOCS"
bucket_name = "documents"
`

function suite(
  name: string,
  setup: () => Promise<{ env: Record<string, string | undefined>; after?: () => Promise<void> }>,
) {
  describe(`env.DOCS through the host (${name})`, () => {
    let host: TestHost
    let dir: string
    let after: (() => Promise<void>) | undefined
    beforeAll(async () => {
      dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
      const s = await setup()
      after = s.after
      host = await startTestHost({ config: join(dir, 'wrangler-compat.toml'), processEnv: s.env })
    })
    afterAll(async () => {
      await host.close()
      await after?.()
    })

    it('puts, gets, lists and deletes objects from a function', async () => {
      const put = await host.fetch('/docs/policies/規程.md', {
        method: 'PUT',
        body: '# 就業規則\n第1条',
        headers: { 'content-type': 'text/markdown', 'x-owner': 'legal' },
      })
      expect(put.status).toBe(201)
      expect(await put.json()).toMatchObject({ key: 'policies/規程.md', size: Buffer.byteLength('# 就業規則\n第1条') })
      await host.fetch('/docs/policies/b.md', { method: 'PUT', body: 'b' })
      const got = await host.fetch(`/docs/${encodeURIComponent('policies/規程.md')}`)
      expect(got.status).toBe(200)
      expect(got.headers.get('content-type')).toBe('text/markdown')
      expect(got.headers.get('x-owner')).toBe('legal')
      expect(await got.text()).toBe('# 就業規則\n第1条')
      expect(await (await host.fetch('/docs?prefix=policies/')).json()).toEqual({
        keys: ['policies/b.md', 'policies/規程.md'],
        truncated: false,
      })
      expect((await host.fetch('/docs/policies/b.md', { method: 'DELETE' })).status).toBe(204)
      expect((await host.fetch('/docs/policies/b.md')).status).toBe(404)
    })

    it('turns an invalid key from a function into a 400 naming the rule', async () => {
      const bad = await host.fetch(`/docs/${encodeURIComponent('/abs')}`, { method: 'PUT', body: 'x' })
      expect(bad.status).toBe(400)
      expect((await bad.json()).error).toMatchObject({
        code: 'ERR_BAD_REQUEST',
        message: expect.stringContaining('absolute paths are not keys'),
      })
    })
  })
}

suite('fs', async () => ({ env: {} }))

let s3: TestS3
suite('s3rver', async () => {
  s3 = await startTestS3(['documents'])
  return {
    env: {
      SOVRA_STORAGE_DRIVER: 's3',
      SOVRA_S3_ENDPOINT: s3.settings.endpoint,
      SOVRA_S3_ACCESS_KEY_ID: s3.settings.accessKeyId,
      SOVRA_S3_SECRET_ACCESS_KEY: s3.settings.secretAccessKey,
    },
    after: () => s3.stop(),
  }
})

describe('r2_buckets config', () => {
  it('writes fs buckets under .sovra/state/buckets next to the config', async () => {
    const dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
    // 'project': the project's own state, as `sovra start` uses it (the test host's default is a temporary folder).
    const host = await startTestHost({ config: join(dir, 'wrangler-compat.toml'), processEnv: {}, state: 'project' })
    await host.fetch('/docs/x', { method: 'PUT', body: 'x' })
    await host.close()
    expect(existsSync(join(dir, '.sovra', 'state', 'buckets', 'documents'))).toBe(true)
  })

  it('refuses a missing or invalid bucket_name and a binding that is not an identifier', () => {
    const dir = withFixtures(
      tempProject({
        'wrangler-compat.toml':
          '[[functions]]\nname = "d"\nmain = "fixtures/docs.ts"\n[[functions.r2_buckets]]\nbinding = "DOCS"\n[[functions.r2_buckets]]\nbinding = "X"\nbucket_name = "Bad_Bucket"\n[[functions.r2_buckets]]\nbinding = "not-ok"\nbucket_name = "fine"\n',
      }),
    )
    try {
      loadConfig({ cwd: dir, processEnv: {} })
      expect.unreachable()
    } catch (error) {
      const messages = (error as ConfigError).diagnostics.map((d) => `${d.path}: ${d.message}`)
      expect(messages).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/r2_buckets\[0\]\.bucket_name: expected the bucket name for binding "DOCS"/),
          expect.stringMatching(/r2_buckets\[1\]\.bucket_name: invalid bucket name "Bad_Bucket"/),
          expect.stringMatching(/r2_buckets\[2\]\.binding: expected a JavaScript identifier/),
        ]),
      )
    }
  })

  it('says which S3 settings are missing when the driver is s3', async () => {
    const dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
    await expect(
      startTestHost({ config: join(dir, 'wrangler-compat.toml'), processEnv: { SOVRA_STORAGE_DRIVER: 's3' } }),
    ).rejects.toThrowError(/S3 storage needs endpoint, accessKeyId, secretAccessKey/)
  })
})

describe('S3 adapter event intake (s3rver emitter)', () => {
  it("turns the store's S3 event records into normalised object events", async () => {
    const { normalizeRecords } = await import('../../../triggers/object/normalize.ts')
    const s3x = await startTestS3(['documents'])
    try {
      const { createS3Client, S3Bucket } = await import('../../../infra/storage/s3-bucket.ts')
      const bucket = new S3Bucket('documents', createS3Client(s3x.settings))
      await bucket.put('policies/from s3.md', '# via S3', { customMetadata: { owner: 'legal' } })
      const records = await waitForRecords(s3x.events)
      const [event] = normalizeRecords(records, 's3')
      expect(event).toMatchObject({
        type: 'created',
        bucket: 'documents',
        key: 'policies/from s3.md',
        source: 's3',
        eventName: expect.stringMatching(/ObjectCreated/),
      })
    } finally {
      await s3x.stop()
    }
  })
})

async function waitForRecords(events: Array<Record<string, unknown>>): Promise<Array<Record<string, unknown>>> {
  for (let i = 0; i < 100 && events.length === 0; i++) await new Promise((r) => setTimeout(r, 50))
  return events
}
