import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { AiRouter } from '../../../infra/pools/router.ts'
import { LogStore, logsDir, type LogEntry } from '../../../infra/observe/log-store.ts'
import { createLogger } from '../../../infra/observe/logger.ts'
import { createPromMetrics } from '../../../infra/observe/metrics.ts'
import { loadConfig } from '../../../runtime/config/load.ts'
import { LocalHost } from '../../../runtime/hosts/local/host.ts'
import { formatLogLine, parseSince } from '../../../runtime/cli/logs.ts'
import { logsAdmin } from '../../../runtime/cli/logs-app.ts'
import { HEAVY_HOOK_MS, ROOT, runCli, tempProject, waitFor } from '../../helpers.ts'

// Logs a marker before and after an await (the second line is written with nothing on the stack that names the
// invocation), and, when it binds env.AI, makes a call the router refuses (no pools): the `ai call failed` line.
const LOUD = `
export default {
  async fetch(request, env) {
    const m = new URL(request.url).searchParams.get('m') ?? 'none'
    console.log('marker', m)
    await new Promise((r) => setTimeout(r, 5))
    console.error('after await', m)
    if (env.AI !== undefined) await env.AI.chat({ model: 'qa', messages: [] }).catch(() => undefined)
    return new Response('ok ' + m)
  },
}
`
const CONFIG = `
[[functions]]
name = "loud"
main = "fns/loud.js"
routes = ["/loud"]

[[functions]]
name = "quiet"
main = "fns/loud.js"
routes = ["/quiet"]
`
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const traceparent = `00-${TRACE}-00f067aa0ba902b7-01`

/** The child processes' environment: never a PostgreSQL store, whatever this process has. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env['SOVRA_DATABASE_URL']
  delete env['SOVRA_URL']
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

const jsonLines = (out: string): LogEntry[] =>
  out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LogEntry)

describe('sovra logs, against `sovra start` and after it stopped', () => {
  let config: string
  const children: ChildProcess[] = []

  beforeAll(() => {
    const dir = tempProject({ 'wrangler-compat.toml': CONFIG, 'fns/loud.js': LOUD })
    config = join(dir, 'wrangler-compat.toml')
  })
  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  })

  it('shows console lines with function, version and invocation; --invocation filters; the files outlive the host', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/sovra.js'), 'start', '--config', config, '--port', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: childEnv(),
    })
    children.push(child)
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    const url = await waitFor(() => /on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1], 60_000)
    const first = await fetch(`${url}/loud?m=first`, { headers: { traceparent } })
    expect(await first.text()).toBe('ok first')
    const id = first.headers.get('x-sovra-invocation-id') as string
    expect(id).toMatch(/^[0-9a-f-]{36}$/)
    const second = await fetch(`${url}/loud?m=second`)
    await second.text()
    await (await fetch(`${url}/quiet?m=other`)).text()

    const all = await sovra(['logs', 'loud', '--config', config])
    expect(all.err).toBe('')
    expect(all.code).toBe(0)
    const lines = all.out.trim().split('\n')
    expect(lines.find((l) => l.includes('marker first'))).toMatch(
      new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z info  loud@[0-9a-f]+ ${id} marker first$`),
    )
    expect(lines.some((l) => l.includes('after await second'))).toBe(true)
    expect(lines.some((l) => l.includes('other'))).toBe(false)

    const one = await sovra(['logs', '--invocation', id, '--json', '--config', config])
    expect(one.code).toBe(0)
    const entries = jsonLines(one.out)
    expect(entries.map((e) => e.msg)).toEqual(['marker first', 'after await first'])
    for (const e of entries)
      expect(e).toMatchObject({ function: 'loud', invocation_id: id, trace_id: TRACE, source: 'console' })
    expect(entries[1]).toMatchObject({ level: 'error', console: 'error' })

    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
    const after = await sovra(['logs', 'loud', '--invocation', id, '--json', '--config', config])
    expect(after.code).toBe(0)
    expect(jsonLines(after.out).map((e) => e.msg)).toEqual(['marker first', 'after await first'])
  }, 150_000)
})

describe('GET /_sovra/logs and the ai call line, in process', () => {
  let host: LocalHost
  let store: LogStore
  let config: string
  let state: string

  beforeAll(async () => {
    const dir = tempProject({
      'wrangler-compat.toml': `${CONFIG}\n[functions.ai]\nbinding = "AI"\n`,
      'fns/loud.js': LOUD,
    })
    config = join(dir, 'wrangler-compat.toml')
    state = join(dir, 'state')
    const { project } = loadConfig({ configPath: config })
    store = new LogStore()
    store.open(logsDir(state))
    const log = createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }), tap: store })
    host = await LocalHost.start({
      project,
      log,
      metrics: createPromMetrics(),
      port: 0,
      state,
      outDir: join(dir, 'build'),
      services: { ai: new AiRouter({ pools: () => [] }, project.tiers, log) },
      admin: [logsAdmin({ project, store })],
    })
  }, HEAVY_HOOK_MS)
  afterAll(async () => {
    store.close()
    await host.close(1000)
  })

  it('names the invocation in the `ai call` line, and follow streams new lines as they come', async () => {
    const res = await fetch(`${host.url}/quiet?m=ai`, { headers: { 'x-request-id': 'req-77' } })
    expect(await res.text()).toBe('ok ai')
    const id = res.headers.get('x-sovra-invocation-id') as string
    const lines = store.recent({ invocation: id })
    expect(lines.find((e) => e.msg === 'ai call failed')).toMatchObject({ function: 'quiet', invocation_id: id })
    expect(lines.find((e) => e.msg === 'marker ai')).toMatchObject({ trace_id: 'req-77', version: expect.any(String) })

    const abort = new AbortController()
    const followed = await fetch(`${host.url}/_sovra/logs?fn=loud&follow=1`, { signal: abort.signal })
    expect(followed.headers.get('content-type')).toBe('application/x-ndjson')
    const reader = (followed.body as ReadableStream<Uint8Array>).getReader()
    await (await fetch(`${host.url}/loud?m=live`)).text()
    const decoder = new TextDecoder()
    let text = ''
    await waitFor(async () => {
      const r = await reader.read()
      text += decoder.decode(r.value ?? new Uint8Array(), { stream: true })
      return text.includes('after await live')
    }, 20_000)
    abort.abort()
    const got = jsonLines(text)
    expect(got.map((e) => e.msg)).toEqual(['marker live', 'after await live'])
    expect(got.every((e) => e.function === 'loud')).toBe(true)
  })

  it('`sovra logs --url` prints the host lines; bad filters are refused with what is valid', async () => {
    const res = await fetch(`${host.url}/loud?m=cli`)
    await res.text()
    const id = res.headers.get('x-sovra-invocation-id') as string
    const out = await runCli([
      'logs',
      'loud',
      '--invocation',
      id,
      '--url',
      host.url,
      '--config',
      config,
      '--state',
      state,
    ])
    expect(out.err).toBe('')
    expect(out.out).toContain(` loud@`)
    expect(out.out).toContain(`${id} marker cli`)
    const badSince = await runCli(['logs', '--since', 'yesterday', '--url', host.url, '--config', config])
    expect(badSince.code).toBe(2)
    expect(badSince.err).toContain('--since: expected a duration back from now (30s, 10m, 2h, 7d)')
    const badFn = await runCli(['logs', 'nope', '--config', config])
    expect(badFn.code).toBe(2)
    expect(badFn.err).toContain('no function "nope"')
    const badQuery = await fetch(`${host.url}/_sovra/logs?since=soon`)
    expect(badQuery.status).toBe(400)
    expect(await badQuery.text()).toContain('since: expected an ISO 8601 time')
  })
})

describe('parseSince and formatLogLine', () => {
  it('reads durations back from now and ISO times', () => {
    expect(parseSince('10m', 1_000_000)).toBe(400_000)
    expect(parseSince('2h', 10_000_000)).toBe(2_800_000)
    expect(parseSince('2026-01-01T00:00:00Z')).toBe(Date.UTC(2026, 0, 1))
  })

  it('prints TIME LEVEL fn@version invocation message, and the other fields of non-console lines', () => {
    const base = { time: '2026-01-01T00:00:00.000Z', level: 'info', function: 'f', version: 'v1', invocation_id: 'i' }
    expect(formatLogLine({ ...base, source: 'console', console: 'log', trace_id: 't', msg: 'hi' })).toBe(
      '2026-01-01T00:00:00.000Z info  f@v1 i hi',
    )
    expect(formatLogLine({ ...base, level: 'warn', op: 'chat', status: 502, msg: 'ai call failed' })).toBe(
      '2026-01-01T00:00:00.000Z warn  f@v1 i ai call failed op=chat status=502',
    )
  })
})
