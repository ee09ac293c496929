import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../../runtime/config/load.ts'
import type { Project } from '../../../runtime/config/resolve.ts'
import { createBucketProvider } from '../../../infra/deploy/project-state.ts'
import { ROOT, tempProject, waitFor, withFixtures } from '../../helpers.ts'

// No object triggers: no embedded database, so a command without a host works on the bucket folders directly.
const CONFIG = `
name = "objcli"
[[functions]]
name = "ok"
main = "fixtures/plain.js"
routes = ["/ok"]
`

/** The bytes of the reproduction: invalid as UTF-8, so any decoding shows. */
const BINARY = Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x80, 0x62, 0x69, 0x6e])

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** The child processes' environment: no PostgreSQL store and no SOVRA_URL from this process, plus `extra`. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra }
  delete env['SOVRA_DATABASE_URL']
  if (extra['SOVRA_URL'] === undefined) delete env['SOVRA_URL']
  return env
}

/** Runs `node bin/sovra.js ARGS` as its own process; stdout is kept as bytes. */
function sovra(
  args: string[],
  extra: Record<string, string> = {},
): Promise<{ code: number; out: Buffer; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'bin/sovra.js'), ...args],
      { env: childEnv(extra), encoding: 'buffer', maxBuffer: 64 << 20, timeout: 60_000 },
      (error, out, err) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1
        resolve({ code, out, err: err.toString('utf8') })
      },
    )
  })
}

/** Runs the CLI in this process, capturing object bytes as they are written. */
async function cli(args: string[]): Promise<{ code: number; out: string; bytes: Buffer; err: string }> {
  const { main } = await import('../../../runtime/cli/main.ts')
  let out = ''
  let err = ''
  const chunks: Buffer[] = []
  const code = await main(args, {
    out: (s) => void (out += `${s}\n`),
    err: (s) => void (err += `${s}\n`),
    // Text output goes to stdout as UTF-8, as the default Io does.
    write: (s) => void chunks.push(Buffer.from(s, 'utf8')),
    bytes: (b) => void chunks.push(Buffer.from(b)),
  })
  return { code, out, bytes: Buffer.concat(chunks), err }
}

/** A port where nothing listens (taken from the OS, then released). */
async function closedPort(): Promise<number> {
  const server = createNetServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** A stand-in host: answers health as the given project and records every other request, or drops it. */
async function fakeHost(
  health: Record<string, unknown> | 404,
  other: 'ok' | 'drop',
): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = []
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/_sovra/health') {
      if (health === 404) return void res.writeHead(404).end('not here')
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(health))
    }
    requests.push(`${req.method} ${req.url}`)
    // A host that dies mid-request: the connection goes without an answer, or in the middle of one.
    if (other === 'drop' && req.method === 'GET') {
      res.writeHead(200, { 'content-length': '1000' }).write('partial', () => req.socket.destroy())
      return
    }
    if (other === 'drop') return void req.socket.destroy()
    req.resume()
    req.on('end', () => res.writeHead(201, { 'content-type': 'application/json' }).end('{"size":0}'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

describe('sovra objects', () => {
  let dir: string
  let config: string
  let project: Project
  let small: string
  let big: string
  let bigBytes: Buffer
  let hostFile: string
  const children: ChildProcess[] = []
  const inState = async (bucket: string, key: string) => createBucketProvider(project, { env: {} })(bucket).head(key)

  beforeAll(() => {
    dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
    config = join(dir, 'wrangler-compat.toml')
    project = loadConfig({ configPath: config, processEnv: {} }).project
    small = join(dir, 's.bin')
    big = join(dir, 'big.bin')
    bigBytes = randomBytes(3 * 1024 * 1024 + 5)
    bigBytes.set(BINARY, 0)
    writeFileSync(small, BINARY)
    writeFileSync(big, bigBytes)
    hostFile = join(dir, '.sovra', 'state', 'host.json')
  })
  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  })

  describe('bytes round-trip exactly (issue 11 R1)', () => {
    it('without a host: binary and a few-MB object, in process and as a process, same sha256', async () => {
      expect((await cli(['objects', 'put', 'docs/s.bin', '--file', small, '--config', config])).code).toBe(0)
      const put = await sovra(['objects', 'put', 'docs/big.bin', '--file', big, '--config', config])
      expect(put.err).toBe('')
      expect(put.out.toString()).toMatch(/^put docs\/big\.bin \(3145733 bytes, etag [0-9a-f]+\)\n$/)

      // Before the fix the bytes were decoded as UTF-8: 00 01 ef bf bd ef bf bd ef bf bd 62 69 6e.
      expect((await cli(['objects', 'get', 'docs/s.bin', '--config', config])).bytes).toEqual(BINARY)
      expect((await sovra(['objects', 'get', 'docs/s.bin', '--config', config])).out).toEqual(BINARY)
      expect(sha256((await cli(['objects', 'get', 'docs/big.bin', '--config', config])).bytes)).toBe(sha256(bigBytes))
      const got = await sovra(['objects', 'get', 'docs/big.bin', '--config', config])
      expect(got.out.byteLength).toBe(bigBytes.byteLength)
      expect(sha256(got.out)).toBe(sha256(bigBytes))
    }, 120_000)

    it('through a running host (found through host.json, or --url): same sha256, odd keys kept', async () => {
      const child = spawn(process.execPath, [join(ROOT, 'bin/sovra.js'), 'start', '--config', config, '--port', '0'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: childEnv(),
      })
      children.push(child)
      let stderr = ''
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
      const url = await waitFor(() => /on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1] ?? '', 60_000)

      const put = await sovra(['objects', 'put', 'docs/host/big.bin', '--file', big, '--config', config])
      expect(put.err).toBe('')
      expect(put.out.toString()).toBe(`put docs/host/big.bin (3145733 bytes) via ${url}\n`)
      const odd = 'host/a b%2e%2e/#?/ü/s.bin'
      expect(
        (await cli(['objects', 'put', `docs/${odd}`, '--file', small, '--url', url, '--config', config])).out,
      ).toBe(`put docs/${odd} (8 bytes) via ${url}\n`)

      const got = await sovra(['objects', 'get', 'docs/host/big.bin', '--config', config])
      expect(got.err).toBe('')
      expect(sha256(got.out)).toBe(sha256(bigBytes))
      const viaUrl = await cli(['objects', 'get', 'docs/host/big.bin', '--url', url, '--config', config])
      expect(sha256(viaUrl.bytes)).toBe(sha256(bigBytes))
      expect((await sovra(['objects', 'get', `docs/${odd}`, '--config', config])).out).toEqual(BINARY)
      const ls = await cli(['objects', 'ls', 'docs/host/', '--config', config])
      expect(ls.out).toMatch(/ 3145733 {2}host\/big\.bin\n/)
      expect(ls.out).toContain(`         8  ${odd}\n`)

      child.kill('SIGTERM')
      expect(await new Promise((resolve) => child.once('exit', resolve))).toBe(0)
      // The host wrote into the state: the same bytes are there without it.
      expect((await inState('docs', 'host/big.bin'))?.etag).toBe(createHash('md5').update(bigBytes).digest('hex'))
    }, 180_000)
  })

  describe('keys are checked with the store rule before any URL is built (issue 11 R2)', () => {
    const BAD = ['docs/../../../ok', 'docs/../log/x.txt', 'docs/a/./b', 'docs/a/..', 'docs//abs']

    it('refuses "." and ".." segments and absolute keys with a host: nothing reaches it', async () => {
      const host = await fakeHost({ status: 'ok', project: { name: 'objcli', config } }, 'ok')
      try {
        for (const target of BAD) {
          for (const sub of ['put', 'get', 'rm']) {
            const res = await cli(['objects', sub, target, '--file', small, '--url', host.url, '--config', config])
            expect({ target, sub, code: res.code }).toEqual({ target, sub, code: 2 })
            expect(res.err).toMatch(
              /ERR_USAGE: invalid object key ".*": ("\." and "\.\." path segments|absolute paths)/,
            )
          }
        }
        // Before the fix: PUT /ok (the function), DELETE /ok, PUT /_sovra/objects/log/x.txt, .../docs/a/b.
        expect(host.requests).toEqual([])
        // A key that only looks like dots is a key: every segment is encoded, so it stays under its bucket.
        const odd = await cli([
          'objects',
          'put',
          'docs/a/%2e%2e/b',
          '--file',
          small,
          '--url',
          host.url,
          '--config',
          config,
        ])
        expect(odd.code).toBe(0)
        expect(host.requests).toEqual(['PUT /_sovra/objects/docs/a/%252e%252e/b'])
      } finally {
        await host.close()
      }
    })

    it('refuses the same keys without a host (the local state) and bad bucket names both ways', async () => {
      for (const target of BAD) {
        const res = await cli(['objects', 'put', target, '--file', small, '--config', config])
        expect({ target, code: res.code }).toEqual({ target, code: 2 })
        expect(res.err).toMatch(/invalid object key/)
      }
      const spawned = await sovra(['objects', 'put', 'docs/../log/x.txt', '--file', small, '--config', config])
      expect(spawned.code).toBe(2)
      expect(spawned.err).toMatch(/invalid object key "\.\.\/log\/x\.txt": "\." and "\.\." path segments/)
      expect(await inState('log', 'x.txt')).toBeNull()
      expect(await inState('docs', 'a/b')).toBeNull()
      const bucket = await cli(['objects', 'ls', 'Docs/x', '--config', config])
      expect(bucket.code).toBe(2)
      expect(bucket.err).toMatch(/invalid bucket name "Docs": 3-63 characters/)
    }, 60_000)
  })

  describe('a host that does not answer is an error, never a silent fallback (issue 11 R3)', () => {
    it('an explicit --url or SOVRA_URL where nothing listens fails, naming the URL; the state is untouched', async () => {
      const url = `http://127.0.0.1:${await closedPort()}`
      const flag = await cli(['objects', 'put', 'docs/r3/flag.bin', '--file', small, '--url', url, '--config', config])
      expect(flag.code).toBe(1)
      expect(flag.err).toContain(`ERR_HOST_UNREACHABLE: no host answers at ${url} (--url): ECONNREFUSED`)
      const env = await sovra(['objects', 'put', 'docs/r3/env.bin', '--file', small, '--config', config], {
        SOVRA_URL: url,
      })
      expect(env.code).toBe(1)
      expect(env.err).toContain(`ERR_HOST_UNREACHABLE: no host answers at ${url} (SOVRA_URL)`)
      expect(await inState('docs', 'r3/flag.bin')).toBeNull()
      expect(await inState('docs', 'r3/env.bin')).toBeNull()
    }, 60_000)

    it('a host that dies mid-put is an error (explicit or found through host.json); the state is untouched', async () => {
      const host = await fakeHost({ status: 'ok', project: { name: 'objcli', config } }, 'drop')
      try {
        const flag = await cli([
          'objects',
          'put',
          'docs/r3/mid.bin',
          '--file',
          big,
          '--url',
          host.url,
          '--config',
          config,
        ])
        expect(flag.code).toBe(1)
        expect(flag.err).toMatch(
          new RegExp(
            `ERR_HOST_UNREACHABLE: the host at ${host.url} \\(--url\\) stopped answering during PUT /_sovra/objects/docs/r3/mid\\.bin`,
          ),
        )
        mkdirSync(join(dir, '.sovra', 'state'), { recursive: true })
        writeFileSync(
          hostFile,
          JSON.stringify({ url: host.url, pid: process.pid, started_at: new Date().toISOString() }),
        )
        const found = await cli(['objects', 'rm', 'docs/r3/mid.bin', '--config', config])
        expect(found.code).toBe(1)
        expect(found.err).toContain(`the host at ${host.url} (host.json) stopped answering during DELETE`)
        const get = await cli(['objects', 'get', 'docs/r3/mid.bin', '--config', config])
        expect(get.code).toBe(1)
        expect(get.err).toContain(
          `the host at ${host.url} (host.json) stopped answering during GET /_sovra/objects/docs/r3/mid.bin (the output is incomplete)`,
        )
        expect(host.requests).toEqual([
          'PUT /_sovra/objects/docs/r3/mid.bin',
          'DELETE /_sovra/objects/docs/r3/mid.bin',
          'GET /_sovra/objects/docs/r3/mid.bin',
        ])
        expect(await inState('docs', 'r3/mid.bin')).toBeNull()
      } finally {
        await host.close()
      }
    })

    it('a found host of another project is not used; an explicit one is an error', async () => {
      const other = join(dir, 'other', 'wrangler-compat.toml')
      const host = await fakeHost({ status: 'ok', project: { name: 'other', config: other } }, 'ok')
      try {
        writeFileSync(
          hostFile,
          JSON.stringify({ url: host.url, pid: process.pid, started_at: new Date().toISOString() }),
        )
        // Another project's host on this state's recorded URL (or the default port): this project has no host.
        const put = await cli(['objects', 'put', 'docs/r3/mine.bin', '--file', small, '--config', config])
        expect(put).toMatchObject({ code: 0, out: expect.stringMatching(/^put docs\/r3\/mine\.bin \(8 bytes, etag /) })
        expect(await inState('docs', 'r3/mine.bin')).not.toBeNull()
        const explicit = await cli(['objects', 'get', 'docs/r3/mine.bin', '--url', host.url, '--config', config])
        expect(explicit.code).toBe(2)
        expect(explicit.err).toContain(
          `the host at ${host.url} (--url) serves project "other" (${other}), not "objcli" (${config})`,
        )
        expect(host.requests).toEqual([])
      } finally {
        await host.close()
      }
      const notSovra = await fakeHost(404, 'ok')
      try {
        const res = await cli(['objects', 'ls', 'docs', '--url', notSovra.url, '--config', config])
        expect(res.code).toBe(1)
        expect(res.err).toContain(`ERR_HOST_UNREACHABLE: ${notSovra.url} (--url) is not a sovra host`)
        expect(notSovra.requests).toEqual([])
      } finally {
        await notSovra.close()
      }
    })
  })
})
