import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createEventsBridgeMain } from '../../../runtime/hosts/openwhisk/events-bridge.ts'
import { startActionProxy } from '../../support/action-proxy.ts'
import { startFakeOpenWhisk } from '../../support/fake-openwhisk.ts'
import { HEAVY_HOOK_MS, runCli, tempProject, withFixtures } from '../../helpers.ts'

const TOKEN = 'hook-secret'
const record = (key: string, name = 's3:ObjectCreated:Put', bucket = 'documents'): Record<string, unknown> => ({
  eventVersion: '2.0',
  eventSource: 'minio:s3',
  eventName: name,
  eventTime: '2026-11-27T01:00:00.000Z',
  s3: {
    bucket: { name: bucket },
    object: { key, size: 3, eTag: 'e1', sequencer: '0000000000000001', contentType: 'text/plain', userMetadata: {} },
  },
})
const web = (body: unknown, auth = `Bearer ${TOKEN}`, method = 'post'): Record<string, unknown> => ({
  __ow_method: method,
  __ow_path: '',
  __ow_headers: { authorization: auth, 'content-type': 'application/json' },
  __ow_body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)).toString('base64'),
  __sovra: {
    webhook_token: TOKEN,
    routes: [
      {
        function: 'indexer',
        trigger: 'p-indexer-object',
        filters: [{ bucket: 'documents', prefix: 'policies/', events: ['created'] }],
      },
    ],
  },
})

describe('events bridge action', () => {
  const fired: Array<{ trigger: string; params: Record<string, unknown> }> = []
  const main = createEventsBridgeMain(async (trigger, params) => void fired.push({ trigger, params }))

  it("answers MinIO's HEAD probe", async () => {
    expect(await main({ ...web(''), __ow_method: 'head' })).toMatchObject({ statusCode: 200 })
  })

  it('refuses a webhook without the bearer token (401) and a body that is not a notification (400)', async () => {
    expect(await main(web({ Records: [record('policies/a.md')] }, 'Bearer nope'))).toMatchObject({ statusCode: 401 })
    expect(fired).toHaveLength(0)
    const bad = await main(web('not json'))
    expect(bad['statusCode']).toBe(400)
    expect(String(bad['body'])).toMatch(/expected a MinIO notification/)
  })

  it('fires the trigger of each matching function with the normalised event (keys decoded), and only those', async () => {
    const r = await main(
      web({
        EventName: 's3:ObjectCreated:Put',
        Key: 'documents/policies/a b.md',
        Records: [
          record('policies/a+b.md'),
          record('other/x.md'),
          record('policies/gone.md', 's3:ObjectRemoved:Delete'),
        ],
      }),
    )
    expect(r['statusCode']).toBe(200)
    expect(fired).toEqual([
      {
        trigger: 'p-indexer-object',
        params: {
          __sovra_trigger: 'object',
          event: expect.objectContaining({
            type: 'created',
            bucket: 'documents',
            key: 'policies/a b.md',
            etag: 'e1',
            source: 'minio',
          }),
        },
      },
    ])
  })

  it('answers 502 when a trigger cannot be fired, so MinIO retries from its queue', async () => {
    const failing = createEventsBridgeMain(async () => {
      throw new Error('503 controller busy')
    })
    const r = await failing(web({ Records: [record('policies/c.md')] }))
    expect(r['statusCode']).toBe(502)
    expect(String(r['body'])).toMatch(
      /firing trigger p-indexer-object for documents\/policies\/c.md failed: 503 controller busy/,
    )
  })
})

describe('deploy with object triggers', () => {
  let fake: Awaited<ReturnType<typeof startFakeOpenWhisk>>
  let dir: string
  beforeAll(async () => {
    fake = await startFakeOpenWhisk()
    process.env['SOVRA_OW_AUTH'] = fake.auth
    process.env['SOVRA_SECRET_MINIO_WEBHOOK_TOKEN'] = TOKEN
    dir = withFixtures(
      tempProject({
        'wrangler-compat.toml': `
name = "p"
[[functions]]
name = "indexer"
main = "fixtures/plain.js"
object_triggers = [{ bucket = "documents", prefix = "policies/", suffix = ".md", events = ["created"] }]
`,
      }),
    )
    expect((await runCli(['keys', 'gen', '--config', join(dir, 'wrangler-compat.toml')])).code).toBe(0)
  }, HEAVY_HOOK_MS)
  afterAll(async () => {
    await fake.close()
  })

  it('deploys the bridge with provide-api-key, prints the mc commands, and the bridge fires the trigger on the cluster', async () => {
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
    expect(res.out).toMatch(/\+ action p\/_events \(new\)/)
    expect(res.out).toMatch(/\+ trigger p-indexer-object \(new\)/)
    expect(res.out).toContain(
      `mc admin config set minio notify_webhook:sovra endpoint="${fake.apihost}/api/v1/web/_/p/_events" auth_token="$MINIO_WEBHOOK_TOKEN"`,
    )
    expect(res.out).toContain(
      'mc event add minio/documents arn:minio:sqs::sovra:webhook --event put --prefix "policies/" --suffix ".md"   # indexer',
    )
    expect(res.out).not.toContain(TOKEN)
    const bridge = fake.store.actions.get('p/_events') as {
      exec: { code: string }
      parameters: Array<{ key: string; value: unknown }>
      annotations: Array<{ key: string; value: unknown }>
    }
    expect(Object.fromEntries(bridge.annotations.map((a) => [a.key, a.value]))).toMatchObject({
      'provide-api-key': true,
      'web-export': true,
      'raw-http': true,
    })
    const proxy = await startActionProxy()
    try {
      await fetch(`${proxy.url}/init`, {
        method: 'POST',
        body: JSON.stringify({
          value: { name: '_events', main: 'main', code: bridge.exec.code, env: { __OW_API_HOST: fake.apihost } },
        }),
      })
      const params = Object.fromEntries(bridge.parameters.map((p) => [p.key, p.value]))
      const run = await fetch(`${proxy.url}/run`, {
        method: 'POST',
        body: JSON.stringify({
          api_key: fake.auth,
          value: {
            ...params,
            ...web({ Records: [record('policies/rule.md'), record('policies/skip.txt')] }),
            __sovra: params['__sovra'],
          },
        }),
      })
      expect(((await run.json()) as { statusCode: number }).statusCode).toBe(200)
      expect(fake.fired).toEqual([
        {
          trigger: 'p-indexer-object',
          params: { __sovra_trigger: 'object', event: expect.objectContaining({ key: 'policies/rule.md' }) },
        },
      ])
    } finally {
      await proxy.close()
    }
  })

  it('sovra minio config prints the same commands for the bridge, or for an embedded host with --target local', async () => {
    const ow = await runCli([
      'minio',
      'config',
      '--apihost',
      fake.apihost,
      '--config',
      join(dir, 'wrangler-compat.toml'),
    ])
    expect(ow.out).toContain(`endpoint="${fake.apihost}/api/v1/web/_/p/_events"`)
    const local = await runCli([
      'minio',
      'config',
      '--target',
      'local',
      '--url',
      'http://sovra.internal:8787',
      '--alias',
      'prod',
      '--config',
      join(dir, 'wrangler-compat.toml'),
    ])
    expect(local.out).toContain(
      'mc admin config set prod notify_webhook:sovra endpoint="http://sovra.internal:8787/_sovra/events/minio"',
    )
    expect(local.out).toContain(
      'mc event add prod/documents arn:minio:sqs::sovra:webhook --event put --prefix "policies/" --suffix ".md"',
    )
  })
})
