import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { loadConfig } from '../../../runtime/config/load.ts'
import type { ConfigError } from '../../../runtime/config/diagnostics.ts'
import { BINDINGS, bindingKind } from '../../../runtime/bindings/registry.ts'
import { serveBindings } from '../../../runtime/bindings/env.ts'
import { buildAction } from '../../../infra/targets/openwhisk/build.ts'
import { desiredState } from '../../../infra/targets/openwhisk/desired.ts'
import { tempProject, withFixtures } from '../../helpers.ts'

const load = (toml: string) =>
  loadConfig({ cwd: withFixtures(tempProject({ 'wrangler-compat.toml': toml })), processEnv: {} })
const messagesOf = (toml: string): string[] => {
  try {
    load(toml)
  } catch (error) {
    return (error as ConfigError).diagnostics.map((d) => `${d.path}: ${d.message}`)
  }
  throw new Error('the config loaded without errors')
}

describe('binding registry', () => {
  it('maps wrangler tables and the native bindings list onto one typed list', () => {
    const wrangler = load(
      '[[pools]]\nname = "qa"\nengine = "llama"\nmodel = "tiny:llama"\n[[functions]]\nname = "a"\nmain = "fixtures/docs.ts"\nr2_buckets = [{ binding = "DOCS", bucket_name = "documents" }]\nai = { binding = "AI" }\n',
    ).project
    const native = load(
      '[[pools]]\nname = "qa"\nengine = "llama"\nmodel = "tiny:llama"\n[[functions]]\nname = "a"\nmain = "fixtures/docs.ts"\nbindings = [{ type = "bucket", name = "DOCS", bucket = "documents" }, { type = "ai", name = "AI" }]\n',
    ).project
    const expected = [
      { type: 'bucket', name: 'DOCS', bucket: 'documents' },
      { type: 'ai', name: 'AI' },
    ]
    expect(wrangler.functions[0]?.bindings).toEqual(expected)
    expect(native.functions[0]?.bindings).toEqual(expected)
  })

  it('refuses an env name bound twice, naming both kinds', () => {
    expect(
      messagesOf(
        '[[functions]]\nname = "a"\nmain = "fixtures/docs.ts"\nr2_buckets = [{ binding = "X", bucket_name = "documents" }]\nbindings = [{ type = "ai", name = "X" }]\n',
      ),
    ).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /functions\[0\]\.bindings: env name "X" is bound twice \((bucket and ai|ai and bucket)\)/,
        ),
      ]),
    )
  })

  it("validates native entries with the kind's schema: unknown type, bad name, bad bucket", () => {
    const messages = messagesOf(
      '[[functions]]\nname = "a"\nmain = "fixtures/docs.ts"\nbindings = [{ type = "queue", name = "Q" }, { type = "bucket", name = "not-ok", bucket = "Bad_Bucket" }]\n',
    ).join('\n')
    expect(messages).toMatch(/bindings\[0\]\.type/)
    expect(messages).toMatch(/"bucket" \| "ai"|bucket.*ai/)
    expect(messages).toMatch(/a JavaScript identifier for env/)
    expect(messages).toMatch(/invalid bucket name "Bad_Bucket"/)
  })

  it('serves each binding through its kind on the host, failing the load when a service is missing', async () => {
    const { project } = load(
      '[[functions]]\nname = "a"\nmain = "fixtures/docs.ts"\nbindings = [{ type = "bucket", name = "DOCS", bucket = "documents" }, { type = "ai", name = "AI" }]\n',
    )
    const fn = project.functions[0]!
    expect(() => serveBindings(fn, {})).toThrow(/binds bucket DOCS but this host has no storage configured/)
    const stored = new Map<string, string>()
    const buckets = () => ({
      get: async () => null,
      head: async () => null,
      list: async () => ({ objects: [], delimitedPrefixes: [], truncated: false, cursor: undefined }),
      delete: async () => undefined,
      put: async (key: string, value: unknown) => (
        stored.set(key, String(value)),
        {
          key,
          size: 1,
          etag: 'e',
          httpEtag: '"e"',
          uploaded: new Date(0),
          httpMetadata: {},
          customMetadata: {},
          version: undefined,
        }
      ),
    })
    const calls: unknown[] = []
    const ai = { call: async (op: string, request: unknown) => (calls.push([op, request]), { text: 'ok' }) } as never
    const host = serveBindings(fn, { buckets, ai })!
    await host('DOCS', 'put', ['k', 'v', {}])
    expect(stored.get('k')).toBe('v')
    await host('AI', 'chat', [{ messages: [] }])
    expect(calls).toEqual([['chat', { messages: [] }]])
    await expect(host('NOPE', 'get', [])).rejects.toThrow(/has no binding "NOPE"; it binds: DOCS, AI/)
  })

  it('every kind has a schema, a resolver, an isolate client, a host server and an action side', () => {
    for (const type of Object.keys(BINDINGS)) {
      const kind = bindingKind(type)
      expect(kind.type).toBe(type)
      for (const part of ['resolve', 'client', 'serve'] as const) expect(typeof kind[part]).toBe('function')
      expect(readFileSync(join(__dirname, '../../../runtime/bindings', type, 'action.ts'), 'utf8')).toMatch(
        /export function actionEnv\(/,
      )
    }
    expect(() => bindingKind('queue')).toThrow(/unknown binding type "queue"; known: bucket, ai/)
  })

  it("bundles a kind's action side into an OpenWhisk action only when the function uses it, with its deploy parameters", async () => {
    const dir = withFixtures(
      tempProject({
        'wrangler-compat.toml':
          '[[functions]]\nname = "plain"\nmain = "fixtures/cronlog.ts"\n[[functions]]\nname = "docs"\nmain = "fixtures/docs.ts"\nbindings = [{ type = "bucket", name = "DOCS", bucket = "documents" }]\n',
      }),
    )
    const { project } = loadConfig({ cwd: dir, processEnv: {} })
    const [plain, docs] = project.functions
    const out = join(dir, 'dist')
    const a = await buildAction(plain!, out, dir)
    const b = await buildAction(docs!, out, dir)
    expect(readFileSync(a.path, 'utf8')).not.toMatch(/S3Client/)
    expect(readFileSync(b.path, 'utf8')).toMatch(/S3Client/)
    const s3 = { endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', accessKeyId: 'k', secretAccessKey: 's' }
    const desired = desiredState(
      project,
      new Map([
        [a.function, a],
        [b.function, b],
      ]),
      { secrets: {}, s3 },
    )
    const sovra = (name: string) =>
      (
        desired.find((d) => d.kind === 'action' && d.function === name)?.body['parameters'] as Array<{
          value: Record<string, unknown>
        }>
      )[0]?.value
    expect(sovra('plain')).toEqual({ vars: {}, secrets: {} })
    expect(sovra('docs')).toEqual({ vars: {}, secrets: {}, buckets: [{ binding: 'DOCS', bucket: 'documents' }], s3 })
    expect(() =>
      desiredState(
        project,
        new Map([
          [a.function, a],
          [b.function, b],
        ]),
        { secrets: {} },
      ),
    ).toThrow(/function "docs" binds buckets; deploying it needs the cluster's S3 settings/)
  }, 60_000)
})
