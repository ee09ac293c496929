import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT, runCli, tempProject, waitFor, withFixtures } from '../../helpers.ts'

const run = runCli

const ECHO_PROJECT = {
  'wrangler-compat.toml': `
[[functions]]
name = "echo"
main = "echo.ts"
routes = ["/v1/echo/*"]
[[functions]]
name = "plain"
main = "fixtures/plain.js"
crons = ["0 2 * * *"]
[functions.vars]
FAIL_CRON = "yes"
`,
  'echo.ts': `export { default } from '${join(ROOT, 'functions/echo/index.ts')}'\n`,
}

describe('sovra CLI', () => {
  it('prints usage and exits 2 for no command, an unknown command or a bad flag', async () => {
    expect((await run([])).code).toBe(2)
    const unknown = await run(['deploy-everything'])
    expect(unknown.code).toBe(2)
    expect(unknown.err).toMatch(
      /unknown command "deploy-everything"; valid commands are: start, dev, invoke, config, init, build, triggers, trigger, events, objects/,
    )
    const badFlag = await run(['invoke', 'echo', '--verbose'])
    expect(badFlag.code).toBe(2)
    expect(badFlag.err).toMatch(/Unknown option '--verbose'[\s\S]*usage: sovra invoke <fn>/)
    const badPort = await run(['start', '--port', 'eighty'])
    expect(badPort.code).toBe(2)
    expect(badPort.err).toMatch(/--port: expected a port number 0-65535, received "eighty"/)
    expect((await run(['config', 'lint'])).code).toBe(2)
    expect((await run(['--help'])).code).toBe(0)
  })

  it('config check prints a summary and exits 0, or prints every diagnostic and exits 1', async () => {
    const good = tempProject({
      'wrangler.toml': 'name = "w"\nmain = "a.js"\nroutes = ["/a"]\nunknwn = 1\n',
      'a.js': 'export default { fetch() { return new Response("") } }',
    })
    const ok = await run(['config', 'check', '--config', join(good, 'wrangler.toml')])
    expect(ok.code).toBe(0)
    expect(ok.out).toMatch(/ok \(1 function: w; 1 warning\)/)
    expect(ok.err).toMatch(/wrangler\.toml: warning: unknwn: unknown key "unknwn" is ignored/)
    const bad = tempProject({ 'wrangler-compat.toml': '[limits]\nmemory_mb = 1\n[[functions]]\nname = "x"\n' })
    const res = await run(['config', 'check', '--config', join(bad, 'wrangler-compat.toml')])
    expect(res.code).toBe(1)
    expect(res.err).toMatch(/wrangler-compat\.toml: error: limits\.memory_mb: expected >=16, received 1/)
    const syntax = tempProject({ 'wrangler-compat.toml': 'name = \n' })
    const s = await run(['config', 'check', '--config', join(syntax, 'wrangler-compat.toml')])
    expect(s.code).toBe(1)
    expect(s.err).toMatch(/wrangler-compat\.toml:1:\d+: error: TOML syntax error/)
  })

  it('start refuses a bad config with its diagnostics and a busy port with a clear message, exit 1', async () => {
    const bad = tempProject({ 'wrangler-compat.toml': '[[functions]]\nname = "x"\nmain = "missing.js"\n' })
    const res = await run(['start', '--config', join(bad, 'wrangler-compat.toml'), '--port', '0'])
    expect(res.code).toBe(1)
    expect(res.err).toMatch(/functions\[0\]\.main: entry module not found/)
    const { createServer } = await import('node:net')
    const busy = createServer()
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()))
    const port = (busy.address() as { port: number }).port
    const dir = withFixtures(tempProject(ECHO_PROJECT))
    const taken = await run(['start', '--config', join(dir, 'wrangler-compat.toml'), '--port', String(port)])
    busy.close()
    expect(taken.code).toBe(1)
    expect(taken.err).toMatch(
      new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\); pass a free --port`),
    )
  }, 60_000)

  it('config check never prints secret values', async () => {
    const dir = tempProject({ ...ECHO_PROJECT, '.dev.vars': 'TOKEN=abc-very-secret-123\n' })
    withFixtures(dir)
    const res = await run(['config', 'check', '--config', join(dir, 'wrangler-compat.toml')])
    expect(res.code).toBe(0)
    expect(res.out).toContain('secrets=TOKEN')
    expect(res.out + res.err).not.toContain('abc-very-secret-123')
  })

  it('invoke runs a function in an isolate without a server and prints the response', async () => {
    const dir = withFixtures(tempProject(ECHO_PROJECT))
    const res = await run([
      'invoke',
      'echo',
      '--config',
      join(dir, 'wrangler-compat.toml'),
      '--path',
      '/v1/echo/x?y=1',
      '--data',
      '{"a":1}',
      '--header',
      'x-k: v',
    ])
    expect(res.code).toBe(0)
    const [head, body] = res.out.split('\n\n')
    expect(head).toMatch(/^HTTP 200 OK\ncontent-type: application\/json/)
    expect(JSON.parse(body as string)).toMatchObject({
      method: 'POST',
      path: '/v1/echo/x',
      query: { y: '1' },
      body: '{"a":1}',
      headers: { 'x-k': 'v', 'content-type': 'application/json' },
      invocation: { trigger: 'invoke' },
    })
  })

  it('invoke --scheduled runs the scheduled handler and exits 1 when it fails', async () => {
    const dir = withFixtures(tempProject(ECHO_PROJECT))
    const res = await run(['invoke', 'plain', '--scheduled', '--config', join(dir, 'wrangler-compat.toml')])
    expect(res.code).toBe(1)
    expect(res.out).toMatch(/scheduled: failed \(ERR_HANDLER: .*\) \[noRetry\]/)
  })

  it('invoke names the functions when the one asked for does not exist, and rejects a bad header', async () => {
    const dir = withFixtures(tempProject(ECHO_PROJECT))
    const res = await run(['invoke', 'ecco', '--config', join(dir, 'wrangler-compat.toml')])
    expect(res.code).toBe(2)
    expect(res.err).toMatch(/unknown function "ecco"; functions in .*: echo, plain/)
    const header = await run(['invoke', 'echo', '--config', join(dir, 'wrangler-compat.toml'), '--header', 'nocolon'])
    expect(header.err).toMatch(/--header: expected "name: value", received "nocolon"/)
  })

  it('build --target local writes one bundle per function and prints its sha256', async () => {
    const dir = withFixtures(tempProject(ECHO_PROJECT))
    const res = await run(['build', '--target', 'local', '--config', join(dir, 'wrangler-compat.toml')])
    expect(res.code).toBe(0)
    const lines = res.out.trim().split('\n')
    expect(lines).toHaveLength(2)
    const [, path, sha] = /^echo {2}(\S+) {2}sha256:([0-9a-f]{64})/.exec(lines[0] as string) ?? []
    expect(existsSync(path as string)).toBe(true)
    const { createHash } = await import('node:crypto')
    expect(
      createHash('sha256')
        .update(readFileSync(path as string))
        .digest('hex'),
    ).toBe(sha)
  })

  it('init scaffolds a project whose function runs and whose own test passes', async () => {
    const parent = tempProject({})
    const dir = join(parent, 'my-app')
    const res = await run(['init', dir])
    expect(res.code).toBe(0)
    for (const f of [
      'package.json',
      'wrangler-compat.toml',
      'functions/hello/index.ts',
      'test/hello.test.ts',
      'tsconfig.json',
    ])
      expect(existsSync(join(dir, f))).toBe(true)
    expect((await run(['init', dir])).err).toMatch(/is not empty/)
    const invoked = await run([
      'invoke',
      'hello',
      '--config',
      join(dir, 'wrangler-compat.toml'),
      '--path',
      '/hello?name=Ada',
    ])
    expect(invoked.out).toMatch(/Hello, Ada!/)
    // The scaffold's own vitest suite, with sovra linked in as `npm install` would.
    mkdirSync(join(dir, 'node_modules'))
    symlinkSync(ROOT, join(dir, 'node_modules', 'sovra'))
    symlinkSync(join(ROOT, 'node_modules', 'vitest'), join(dir, 'node_modules', 'vitest'))
    const vitest = spawnSync(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 60_000,
    })
    expect(vitest.stdout + vitest.stderr).toMatch(/3 passed/)
    expect(vitest.status).toBe(0)
  }, 90_000)
})

describe('sovra dev', () => {
  it('rebuilds and reloads a function on save, restarts on a config change, keeps serving on broken saves', async () => {
    const dir = tempProject({
      'wrangler-compat.toml': '[[functions]]\nname = "v"\nmain = "v.ts"\nroutes = ["/v"]\n',
      'v.ts': 'export default { fetch() { return new Response("one") } }\n',
    })
    const child = spawn(
      process.execPath,
      [join(ROOT, 'bin/sovra.js'), 'dev', '--config', join(dir, 'wrangler-compat.toml'), '--port', '0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let stderr = ''
    let stdout = ''
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    try {
      const url = await waitFor(() => /on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1], 15_000)
      expect(await (await fetch(`${url}/v`)).text()).toBe('one')
      writeFileSync(join(dir, 'v.ts'), 'export default { fetch() { return new Response("two") } }\n')
      await waitFor(async () => (await (await fetch(`${url}/v`)).text()) === 'two', 10_000)
      writeFileSync(join(dir, 'v.ts'), 'export default { fetch() { return new Response("three" }\n')
      await waitFor(() => stdout.includes('rebuild failed'), 10_000)
      expect(await (await fetch(`${url}/v`)).text()).toBe('two')
      expect(stdout).toMatch(/v\.ts:1:\d+: Expected \\"\)\\" but found/)
      // A config change restarts the host in place; a broken config is refused and the old one keeps serving.
      writeFileSync(join(dir, 'w.ts'), 'export default { fetch() { return new Response("w") } }\n')
      writeFileSync(
        join(dir, 'wrangler-compat.toml'),
        '[[functions]]\nname = "v"\nmain = "w.ts"\nroutes = ["/v", "/w"]\n',
      )
      await waitFor(
        async () =>
          (await fetch(`${url}/w`).then(
            (r) => r.text(),
            () => '',
          )) === 'w',
        15_000,
      )
      writeFileSync(join(dir, 'wrangler-compat.toml'), '[[functions]]\nname = "v"\nmain = "nope.ts"\n')
      await waitFor(() => stdout.includes('config change rejected'), 10_000)
      expect(stderr).toMatch(/entry module not found: .*nope\.ts/)
      expect(await (await fetch(`${url}/w`)).text()).toBe('w')
    } finally {
      child.kill('SIGTERM')
    }
    expect(await exited).toBe(0)
  }, 40_000)
})
