import { createHash, randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../../../runtime/config/load.ts'
import type { Project } from '../../../../runtime/config/resolve.ts'
import { LocalHost } from '../../../../runtime/hosts/local/host.ts'
import { createBucketProvider } from '../../../../infra/deploy/project-state.ts'
import { createPromMetrics } from '../../../../infra/observe/metrics.ts'
import { captureLogger, HEAVY_HOOK_MS, tempProject, withFixtures } from '../../../helpers.ts'

// A function at /ok: a request whose path normalises out of /_sovra/objects would land there.
const CONFIG = `
name = "objadmin"
[[functions]]
name = "ok"
main = "fixtures/plain.js"
routes = ["/ok"]
`

/** Sends a request with the path exactly as given (fetch would normalise "." and ".." segments first). */
function raw(url: string, method: string, path: string, body?: Buffer): Promise<{ status: number; message: string }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, method, path }, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => (text += d.toString()))
      res.on('end', () => {
        const parsed = (text === '' ? {} : JSON.parse(text)) as { error?: { code: string; message: string } }
        const e = parsed.error
        resolve({ status: res.statusCode ?? 0, message: e === undefined ? '' : `${e.code}: ${e.message}` })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('objects admin API (/_sovra/objects on the embedded host)', () => {
  let host: LocalHost
  let project: Project
  let dir: string
  let state: string
  let buckets: ReturnType<typeof createBucketProvider>

  beforeAll(async () => {
    dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
    project = loadConfig({ cwd: dir, processEnv: {} }).project
    state = join(dir, 'elsewhere', 'state')
    buckets = createBucketProvider(project, { state, env: {} })
    host = await LocalHost.start({
      project,
      log: captureLogger(),
      metrics: createPromMetrics(),
      port: 0,
      state,
      services: { buckets },
    })
  }, HEAVY_HOOK_MS)
  afterAll(async () => {
    await host?.close(0)
  })

  it('health names the project and the state folder the host holds', async () => {
    const body = (await (await fetch(`${host.url}/_sovra/health`)).json()) as { project: unknown }
    expect(body.project).toEqual({ name: 'objadmin', config: join(dir, 'wrangler-compat.toml'), state })
  })

  it('round-trips binary bytes exactly, a few MB streamed both ways', async () => {
    const big = randomBytes(3 * 1024 * 1024 + 17)
    big.set([0x00, 0x01, 0xff, 0xfe, 0x80], 0)
    const put = await fetch(`${host.url}/_sovra/objects/docs/bin/big.bin`, { method: 'PUT', body: big })
    expect(put.status).toBe(201)
    expect(((await put.json()) as { size: number }).size).toBe(big.byteLength)
    const got = await fetch(`${host.url}/_sovra/objects/docs/bin/big.bin`)
    expect(got.headers.get('content-length')).toBe(String(big.byteLength))
    expect(sha256(new Uint8Array(await got.arrayBuffer()))).toBe(sha256(big))
  })

  it('refuses "." and ".." segments in the path as sent, instead of acting on the normalised path', async () => {
    // Without the check: docs/a/./b was stored as a/b, docs/../log/x.txt in bucket "log".
    for (const path of [
      '/_sovra/objects/docs/a/./b',
      '/_sovra/objects/docs/a/%2e/b',
      '/_sovra/objects/docs/a/%2E%2e/b',
      '/_sovra/objects/docs/x/../../log/x.txt',
    ]) {
      const res = await raw(host.url, 'PUT', path, Buffer.from('sneaky'))
      expect({ path, status: res.status }).toEqual({ path, status: 400 })
      expect(res.message).toMatch(/ERR_BAD_REQUEST.*has a "(\.|\.\.|%2e|%2E%2e)" segment/)
    }
    expect((await buckets('docs').list()).objects.map((o) => o.key)).not.toContain('a/b')
    expect((await buckets('docs').list()).objects.map((o) => o.key)).not.toContain('b')
    expect((await buckets('log').list()).objects).toEqual([])
    const del = await raw(host.url, 'DELETE', '/_sovra/objects/docs/bin/./big.bin')
    expect(del.status).toBe(400)
    expect(await buckets('docs').head('bin/big.bin')).not.toBeNull()
  })

  it('refuses keys the store refuses, whatever their encoding (..%2F escapes no bucket)', async () => {
    const res = await raw(host.url, 'PUT', '/_sovra/objects/docs/..%2F..%2Fok', Buffer.from('x'))
    expect(res.status).toBe(400)
    expect(res.message).toMatch(/invalid object key "\.\.\/\.\.\/ok": "\." and "\.\." path segments are not allowed/)
    const bucket = await raw(host.url, 'GET', '/_sovra/objects/Bad_Bucket/k')
    expect(bucket.status).toBe(400)
    expect(bucket.message).toMatch(/invalid bucket name "Bad_Bucket"/)
  })

  it('keeps percent-encoded key characters as they are', async () => {
    const key = 'odd/a b%2e%2e/#?/ü/..x'
    const path = `/_sovra/objects/docs/${key.split('/').map(encodeURIComponent).join('/')}`
    expect((await fetch(`${host.url}${path}`, { method: 'PUT', body: 'odd' })).status).toBe(201)
    expect(await (await buckets('docs').get(key))?.text()).toBe('odd')
    expect(await (await fetch(`${host.url}${path}`)).text()).toBe('odd')
  })
})
