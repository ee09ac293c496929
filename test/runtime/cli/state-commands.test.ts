import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT, runCli, tempProject, waitFor, withFixtures } from '../../helpers.ts'
import { createTestSchema } from '../../support/pg.ts'

const TOKEN = 'cli-test-token-0123456789'
const CONFIG = `
[[functions]]
name = "objlog"
main = "fixtures/objlog.ts"
object_triggers = [{ bucket = "documents", prefix = "policies/" }]
[[functions.r2_buckets]]
binding = "LOG"
bucket_name = "objlog"
`

const run = runCli

describe('state commands and crash safety (sovra start process, PostgreSQL store)', () => {
  let dir: string
  let config: string
  let drop: () => Promise<void>
  let env: Record<string, string>
  let child: ChildProcess | undefined
  // Every host started here, so none outlives the suite (the first test's host used to leak).
  const children: ChildProcess[] = []

  async function startHost(): Promise<string> {
    const c = spawn(process.execPath, [join(ROOT, 'bin/sovra.js'), 'start', '--config', config, '--port', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...env },
    })
    child = c
    children.push(c)
    let stderr = ''
    c.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    return waitFor(() => /on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1] ?? '', 20_000)
  }

  beforeAll(async () => {
    dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG, 'doc.md': '# CLI upload' }))
    config = join(dir, 'wrangler-compat.toml')
    const schema = await createTestSchema('sovra_cli')
    drop = schema.drop
    env = { SOVRA_DATABASE_URL: schema.url, SOVRA_SECRET_MINIO_WEBHOOK_TOKEN: TOKEN }
    // In-process CLI runs (no host) read the same store as the host process.
    process.env['SOVRA_DATABASE_URL'] = env['SOVRA_DATABASE_URL'] as string
  })
  afterAll(async () => {
    delete process.env['SOVRA_DATABASE_URL']
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    await drop()
  })

  it('objects put through the running host fires the object trigger; get, ls and rm work', async () => {
    const url = await startHost()
    const put = await run([
      'objects',
      'put',
      'documents/policies/cli.md',
      '--file',
      join(dir, 'doc.md'),
      '--content-type',
      'text/markdown',
      '--url',
      url,
      '--config',
      config,
    ])
    expect(put.code).toBe(0)
    expect(put.out).toMatch(/put documents\/policies\/cli\.md \(12 bytes\) via http/)
    await waitFor(
      async () =>
        (await run(['objects', 'get', 'objlog/seen/policies/cli.md', '--url', url, '--config', config])).code === 0,
      10_000,
    )
    const got = await run(['objects', 'get', 'documents/policies/cli.md', '--url', url, '--config', config])
    expect(got.out).toBe('# CLI upload')
    const ls = await run(['objects', 'ls', 'documents/policies/', '--url', url, '--config', config])
    expect(ls.out).toMatch(/ {8}12 {2}policies\/cli\.md/)
    expect((await run(['objects', 'rm', 'documents/policies/cli.md', '--url', url, '--config', config])).code).toBe(0)
    const missing = await run(['objects', 'get', 'documents/policies/cli.md', '--url', url, '--config', config])
    expect(missing.code).toBe(1)
    expect(missing.err).toMatch(/ERR_NOT_FOUND: no object documents\/policies\/cli\.md/)
    expect((await run(['objects', 'get', 'nobucketkey', '--url', url, '--config', config])).code).toBe(2)
  })

  it('an event acknowledged by the webhook survives SIGKILL of the host before its handler ran', async () => {
    const url = await startHost()
    const rec = {
      eventName: 's3:ObjectCreated:Put',
      s3: {
        bucket: { name: 'documents' },
        object: {
          key: 'policies/crash.md',
          eTag: 'c1',
          sequencer: '0000000000000AAA',
          userMetadata: { 'X-Amz-Meta-mode': 'slow', 'X-Amz-Meta-ms': '1500' },
        },
      },
    }
    const res = await fetch(`${url}/_sovra/events/minio`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ Records: [rec] }),
    })
    expect(res.status).toBe(200)
    child?.kill('SIGKILL')
    await new Promise((r) => child?.once('exit', r))
    // No host: the CLI reads the queue itself, and the event is still there, interrupted.
    const pending = await run(['events', '--config', config])
    expect(pending.out).toMatch(/(running|pending) +objlog +created documents\/policies\/crash\.md/)
    const again = await startHost()
    await waitFor(
      async () =>
        (
          await run(['objects', 'get', 'objlog/seen/policies/crash.md', '--url', again, '--config', config])
        ).out.startsWith('created:'),
      15_000,
    )
    child?.kill('SIGTERM')
    await new Promise((r) => child?.once('exit', r))
  }, 60_000)

  it('trigger object and events replay work on the state itself when no host runs', async () => {
    const t = await run(['trigger', 'object', 'documents/policies/queued.md', '--config', config])
    expect(t.out).toMatch(/matched 1 function\(s\), queued 1 \(they run when a host starts\)/)
    const none = await run(['events', 'replay', '--config', config])
    expect(none.code).toBe(2)
    const r = await run(['events', 'replay', '--all-dead', '--config', config])
    expect(r.out).toMatch(/replayed 0 dead events/)
  })
})
