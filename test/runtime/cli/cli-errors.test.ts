import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT, runCli, tempProject } from '../../helpers.ts'
import {
  parseChoice,
  parseCommandArgs,
  parseHost,
  parseIntFlag,
  parseIsoDate,
  parsePort,
  readFileFlag,
} from '../../../runtime/cli/args.ts'

const PROJECT = {
  'wrangler-compat.toml': `
name = "errs"
[[functions]]
name = "echo"
main = "echo.js"
routes = ["/echo"]
object_triggers = [{ bucket = "docs", events = ["created"] }]
`,
  'echo.js': 'export default { fetch() { return new Response("ok") } }\n',
}

/** Every usage error is exit 2 with "sovra <cmd>: ERR_USAGE: <flag>: ..." and no stack trace. */
function expectUsage(res: { code: number; out: string; err: string }, message: RegExp): void {
  expect(res.err).toMatch(message)
  expect(res.err).toMatch(/ERR_USAGE/)
  expect(res.err).not.toMatch(/\n\s+at /)
  expect(res.code).toBe(2)
}

describe('sovra CLI usage errors (issue 11, R11)', () => {
  const dir = tempProject(PROJECT)
  const config = ['--config', join(dir, 'wrangler-compat.toml')]

  it('events refuses a non-numeric --limit and an unknown --status, before touching the queue', async () => {
    expectUsage(
      await runCli(['events', '--limit', 'abc', ...config]),
      /--limit: expected a whole number 1-100000, received "abc"/,
    )
    expectUsage(
      await runCli(['events', '--limit', '-5', ...config]),
      /--limit: expected a whole number 1-100000, received "-5"/,
    )
    expectUsage(
      await runCli(['events', '--status', 'bogus', ...config]),
      /--status: expected one of pending, running, done, dead, all, received "bogus"/,
    )
    expectUsage(await runCli(['events', '--dead', '--status', 'done', ...config]), /--dead and --status "done"/)
  })

  it('invoke names a missing --data file, a body on GET and a bad --cron', async () => {
    expectUsage(
      await runCli(['invoke', 'echo', '--data', '@/nonexistent/body.json', ...config]),
      /--data @file: cannot read "\/nonexistent\/body.json": no such file \(ENOENT\)/,
    )
    expectUsage(
      await runCli(['invoke', 'echo', '--data', `@${dir}`, ...config]),
      /it is a folder, not a file \(EISDIR\)/,
    )
    expectUsage(
      await runCli(['invoke', 'echo', '--method', 'GET', '--data', 'x', ...config]),
      /--method GET cannot carry --data/,
    )
    expectUsage(await runCli(['invoke', 'echo', '--method', 'TRACE', ...config]), /--method: expected an HTTP method/)
    expectUsage(
      await runCli(['invoke', 'echo', '--header', 'bad name: v', ...config]),
      /--header: expected "name: value"/,
    )
    expectUsage(
      await runCli(['invoke', 'echo', '--scheduled', '--cron', 'x x x x x', ...config]),
      /--cron: .*invalid schedule "x x x x x"/,
    )
    expectUsage(await runCli(['invoke', 'echo', '--cron', '0 2 * * *', ...config]), /--cron applies to --scheduled/)
  })

  it('start refuses a host that is not an address and a negative port, naming what is valid', async () => {
    expectUsage(
      await runCli(['start', '--host', '256.1.1.1', '--port', '0', ...config]),
      /--host: expected an IPv4 address \(each of the 4 parts 0-255.*received "256\.1\.1\.1"/,
    )
    expectUsage(
      await runCli(['start', '--port', '-1', ...config]),
      /--port: expected a port number 0-65535, received "-1"/,
    )
    expectUsage(await runCli(['start', '-p', '-1', ...config]), /--port: expected a port number 0-65535, received "-1"/)
    expectUsage(
      await runCli(['start', '--host', 'no-such-host.invalid', '--port', '0', ...config]),
      /--host: host name "no-such-host\.invalid" does not resolve/,
    )
  })

  it('minio config refuses an unknown --target, a non-http --url, an unsafe --alias and an unwritable --out', async () => {
    expectUsage(
      await runCli(['minio', 'config', '--target', 'nope', ...config]),
      /--target: expected one of openwhisk, local, received "nope"/,
    )
    expectUsage(
      await runCli(['minio', 'config', '--target', 'local', '--url', 'ftp://x', ...config]),
      /--url: expected an http:\/\/ or https:\/\/ URL/,
    )
    expectUsage(
      await runCli(['minio', 'config', '--target', 'local', '--alias', 'a;rm', ...config]),
      /--alias: expected an mc alias name/,
    )
    expectUsage(
      await runCli(['minio', 'config', '--target', 'local', '--out', '/nonexistent/dir/notify.sh', ...config]),
      /--out: cannot write "\/nonexistent\/dir\/notify\.sh": its folder does not exist/,
    )
    const ok = await runCli(['minio', 'config', '--target', 'local', '--url', 'http://h:8787/', ...config])
    expect(ok.out).toMatch(/endpoint="http:\/\/h:8787\/_sovra\/events\/minio"/)
    expect(ok.code).toBe(0)
  })

  it('trigger and config schema check --type, --url and --out', async () => {
    expectUsage(
      await runCli(['trigger', 'object', 'docs/a.md', '--type', 'nope', ...config]),
      /--type: expected one of created, removed, received "nope"/,
    )
    expectUsage(await runCli(['trigger', 'cron', 'echo', '--url', 'not-a-url', ...config]), /--url: expected an http/)
    expectUsage(await runCli(['config', 'schema', '--out', '/nonexistent/s.json']), /--out: cannot write/)
    expect((await runCli(['config', 'schema', '--help'])).code).toBe(0)
  })

  it('sign names a missing file', async () => {
    expectUsage(await runCli(['sign', '/nonexistent/file.bin', ...config]), /cannot read "\/nonexistent\/file\.bin"/)
  })
})

describe('shared flag validators (runtime/cli/args.ts)', () => {
  const usage = (f: () => unknown) => expect(f).toThrowError(expect.objectContaining({ code: 'ERR_USAGE' }))

  it('parses whole numbers in a range, ports and choices', () => {
    expect(parseIntFlag(undefined, '--n', { min: 1, max: 5 }, 3)).toBe(3)
    expect(parseIntFlag('5', '--n', { min: 1, max: 5 }, 3)).toBe(5)
    for (const bad of ['0', '6', '1e1', '2.5', '', 'x']) usage(() => parseIntFlag(bad, '--n', { min: 1, max: 5 }, 3))
    expect(parsePort('0', '--port', 1)).toBe(0)
    for (const bad of ['-1', '65536', '80x']) usage(() => parsePort(bad, '--port', 1))
    expect(parseChoice('b', '--x', ['a', 'b'], 'a')).toBe('b')
    usage(() => parseChoice('c', '--x', ['a', 'b'], 'a'))
  })

  it('parses ISO 8601 dates and refuses impossible ones', () => {
    expect(parseIsoDate('2026-11-01', '--since')).toBe(Date.UTC(2026, 10, 1))
    expect(parseIsoDate('2026-11-01T09:30:00Z', '--since')).toBe(Date.UTC(2026, 10, 1, 9, 30))
    expect(parseIsoDate('2026-11-01T09:30+09:00', '--since')).toBe(Date.UTC(2026, 10, 1, 0, 30))
    expect(parseIsoDate('2026-11-01T09:30:00.25Z', '--since')).toBe(Date.UTC(2026, 10, 1, 9, 30, 0, 250))
    for (const bad of ['2023-02-29', '2026-13-01', '2026-11-01T24:00', 'yesterday', '11/01/2026'])
      expect(() => parseIsoDate(bad, '--since')).toThrowError(/--since: expected an ISO 8601 date/)
  })

  it('parses hosts: IPv4, IPv6 and names; a dotted number must be a valid IPv4 address', () => {
    for (const good of ['127.0.0.1', '0.0.0.0', '::1', '::', 'localhost', 'db-1.internal'])
      expect(parseHost(good, '--host', 'x')).toBe(good)
    expect(parseHost('[::1]', '--host', 'x')).toBe('::1')
    for (const bad of ['256.1.1.1', '1.2.3', 'a..b', '-x', 'a_b', '']) usage(() => parseHost(bad, '--host', 'x'))
  })

  it('reads a flag file or names the flag, the path and why not', () => {
    const dir = tempProject({ 'a.txt': 'hi' })
    expect(readFileFlag(join(dir, 'a.txt'), '--file').toString()).toBe('hi')
    expect(() => readFileFlag(join(dir, 'b.txt'), '--file')).toThrowError(
      /--file: cannot read ".*b\.txt": no such file/,
    )
  })

  it('passes a negative number as a value instead of calling it ambiguous', () => {
    const options = { port: { type: 'string', short: 'p' } } as const
    expect(parseCommandArgs(['--port', '-1'], options, 'u').values.port).toBe('-1')
    expect(parseCommandArgs(['-p', '-2'], options, 'u').values.port).toBe('-2')
    expect(() => parseCommandArgs(['--port', '-x'], options, 'u')).toThrowError(/ambiguous/)
  })
})

/** bin/sovra.js's exit code when stdout's reader is gone: 128 + SIGPIPE, as a shell reports a process SIGPIPE killed. */
const BROKEN_PIPE_EXIT = 141

describe('sovra CLI output to a closed pipe (issue 11, R11)', () => {
  it(`exits ${BROKEN_PIPE_EXIT} without a stack trace when the reader goes away (sovra ... | head -1)`, async () => {
    // Enough output that some write lands after the reader closed its end.
    const big = tempProject({
      'wrangler-compat.toml': Array.from(
        { length: 400 },
        (_, i) => `[[functions]]\nname = "f${i}"\nmain = "a.js"\nroutes = ["/f${i}"]\n`,
      ).join('\n'),
      'a.js': 'export default { fetch() { return new Response("") } }\n',
    })
    const child = spawn(
      process.execPath,
      [join(ROOT, 'bin/sovra.js'), 'config', 'check', '--config', join(big, 'wrangler-compat.toml')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    child.stdout.destroy()
    let err = ''
    child.stderr.on('data', (c: Buffer) => (err += c.toString()))
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)))
    expect(err).not.toMatch(/EPIPE|\n\s+at /)
    expect(code).toBe(BROKEN_PIPE_EXIT)
  }, 60_000)
})
