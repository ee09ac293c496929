import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT, tempProject, waitFor, withFixtures } from '../../helpers.ts'

// Object triggers and no database URL: the host holds the embedded PGlite store under .sovra/state, so a command
// that misses the host and opens the state itself fails with "database in use".
const CONFIG = `
[[functions]]
name = "objlog"
main = "fixtures/objlog.ts"
object_triggers = [{ bucket = "documents", prefix = "policies/" }]
[[functions.r2_buckets]]
binding = "LOG"
bucket_name = "objlog"
`

/** The child processes' environment: never a PostgreSQL store, whatever this process has. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env['SOVRA_DATABASE_URL']
  return env
}

/** Runs `node bin/sovra.js ARGS` as its own process, as a user would. */
function sovra(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'bin/sovra.js'), ...args],
      { env: childEnv(), timeout: 60_000 },
      (error, out, err) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, out, err })
      },
    )
  })
}

/** A port where nothing listens (taken from the OS, then released). */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await new Promise((resolve) => c.once('exit', resolve))
  return c.pid as number
}

describe('CLI commands find the running host through <state>/host.json', () => {
  let dir: string
  let config: string
  let hostFile: string
  const children: ChildProcess[] = []

  beforeAll(() => {
    dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG, 'doc.md': '# via the host' }))
    config = join(dir, 'wrangler-compat.toml')
    hostFile = join(dir, '.sovra', 'state', 'host.json')
  })
  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  })

  it('a host on a free port records its URL; commands without --url reach it; the file goes at shutdown', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/sovra.js'), 'start', '--config', config, '--port', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: childEnv(),
    })
    children.push(child)
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    const url = await waitFor(() => /on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1], 60_000)
    expect(url).not.toBe('http://127.0.0.1:8787')
    expect(JSON.parse(readFileSync(hostFile, 'utf8'))).toEqual({ url, pid: child.pid, started_at: expect.any(String) })

    const put = await sovra([
      'objects',
      'put',
      'documents/policies/a.md',
      '--file',
      join(dir, 'doc.md'),
      '--config',
      config,
    ])
    expect(put.err).toBe('')
    expect(put).toMatchObject({ code: 0, out: expect.stringContaining(`via ${url}`) })
    // The host ran the object trigger for that write; another command reads its queue through it too.
    await waitFor(async () => (await fetch(`${url}/_sovra/objects/objlog/seen/policies/a.md`)).ok, 30_000)
    const events = await sovra(['events', '--config', config])
    expect(events.code).toBe(0)
    expect(events.out).toMatch(/done +objlog +created documents\/policies\/a\.md/)

    child.kill('SIGTERM')
    expect(await new Promise((resolve) => child.once('exit', resolve))).toBe(0)
    expect(existsSync(hostFile)).toBe(false)
  }, 180_000)

  it('ignores a stale host file: its process is gone, or nothing answers at its URL', async () => {
    // A host left by a failed first test would hold the state; this test is about files no host stands behind.
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    await Promise.all(
      children.map((c) =>
        c.exitCode === null && c.signalCode === null ? new Promise((resolve) => c.once('exit', resolve)) : undefined,
      ),
    )
    const stale = [
      { url: 'http://127.0.0.1:9', pid: await deadPid() },
      // This test's process is alive, but no host listens at the URL.
      { url: `http://127.0.0.1:${await closedPort()}`, pid: process.pid },
    ]
    for (const [i, record] of stale.entries()) {
      writeFileSync(hostFile, JSON.stringify({ ...record, started_at: new Date().toISOString() }))
      const put = await sovra([
        'objects',
        'put',
        `documents/policies/stale-${i}.md`,
        '--file',
        join(dir, 'doc.md'),
        '--config',
        config,
      ])
      expect(put.err).toBe('')
      // No host: written to the state directly, its event queued for the next host start.
      expect(put).toMatchObject({
        code: 0,
        out: expect.stringMatching(
          /put documents\/policies\/stale-\d\.md \(14 bytes, etag .*\); its object events are queued/,
        ),
      })
    }
  }, 120_000)
})
