import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startActionProxy } from '../../support/action-proxy.ts'
import { startFakeOpenWhisk } from '../../support/fake-openwhisk.ts'
import { startTestS3, type TestS3 } from '../../support/s3.ts'
import { HEAVY_HOOK_MS, runCli, tempProject, withFixtures } from '../../helpers.ts'

// A bucket binding on OpenWhisk: the deploy binds the cluster's S3 settings; the action talks to the store itself
// (s3rver on 127.0.0.1 here, MinIO with SOVRA_TEST_S3_*).
let fake: Awaited<ReturnType<typeof startFakeOpenWhisk>>
let s3: TestS3
let proxy: { url: string; close(): Promise<void> }
let bound: Record<string, unknown>

beforeAll(async () => {
  s3 = await startTestS3(['ow-documents'])
  fake = await startFakeOpenWhisk()
  process.env['SOVRA_OW_AUTH'] = fake.auth
  process.env['SOVRA_S3_ENDPOINT'] = s3.settings.endpoint
  process.env['SOVRA_S3_ACCESS_KEY_ID'] = s3.settings.accessKeyId
  process.env['SOVRA_S3_SECRET_ACCESS_KEY'] = s3.settings.secretAccessKey
  const dir = withFixtures(
    tempProject({
      'wrangler-compat.toml': `
name = "docs-ow"
[[functions]]
name = "docs"
main = "fixtures/docs.ts"
routes = ["/docs", "/docs/*"]
r2_buckets = [{ binding = "DOCS", bucket_name = "ow-documents" }]
`,
    }),
  )
  expect((await runCli(['keys', 'gen', '--config', join(dir, 'wrangler-compat.toml')])).code).toBe(0)
  const res = await runCli([
    'deploy',
    '--target',
    'openwhisk',
    '--apihost',
    fake.apihost,
    '--config',
    join(dir, 'wrangler-compat.toml'),
  ])
  expect(res.code).toBe(0)
  const action = [...fake.store.actions.values()][0] as {
    exec: { code: string }
    parameters: Array<{ key: string; value: unknown }>
  }
  bound = Object.fromEntries(action.parameters.map((p) => [p.key, p.value]))
  proxy = await startActionProxy()
  await fetch(`${proxy.url}/init`, {
    method: 'POST',
    body: JSON.stringify({ value: { name: 'docs', main: 'main', code: action.exec.code } }),
  })
}, HEAVY_HOOK_MS)
afterAll(async () => {
  for (const k of ['SOVRA_S3_ENDPOINT', 'SOVRA_S3_ACCESS_KEY_ID', 'SOVRA_S3_SECRET_ACCESS_KEY']) delete process.env[k]
  await proxy?.close()
  await fake?.close()
  await s3?.stop()
})

async function run(
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ statusCode: number; headers: Record<string, string>; body?: string }> {
  const value = {
    ...bound,
    __ow_method: method,
    __ow_path: path,
    __ow_query: '',
    __ow_headers: { host: 'ow', ...headers },
    ...(body === undefined ? {} : { __ow_body: Buffer.from(body).toString('base64') }),
  }
  return (await (
    await fetch(`${proxy.url}/run`, {
      method: 'POST',
      body: JSON.stringify({ value, deadline: String(Date.now() + 30_000) }),
    })
  ).json()) as { statusCode: number; headers: Record<string, string>; body?: string }
}

describe('bucket bindings on OpenWhisk', () => {
  it('binds the S3 settings and bucket at deploy, and the action puts and gets objects in the store', async () => {
    expect(bound['__sovra']).toMatchObject({
      buckets: [{ binding: 'DOCS', bucket: 'ow-documents' }],
      s3: { endpoint: s3.settings.endpoint },
    })
    const put = await run('put', '/docs/policies/規程.md', '# 規程', {
      'content-type': 'text/markdown',
      'x-owner': 'legal',
    })
    expect(put.statusCode).toBe(201)
    const got = await run('get', `/docs/${encodeURIComponent('policies/規程.md')}`)
    expect(got.statusCode).toBe(200)
    expect(got.headers['x-owner']).toBe('legal')
    expect(got.headers['content-type']).toBe('text/markdown')
    // Text content types travel as text in the result; others as base64.
    expect(got.body).toBe('# 規程')
  })
})
