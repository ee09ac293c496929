import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { bundleFunction } from '../../../runtime/isolate/bundle.ts'
import { logIsolateEvent } from '../../../runtime/isolate/isolate-log.ts'
import { IsolatePool, type InvocationRecord, type IsolateEvent } from '../../../runtime/isolate/pool.ts'
import { captureLogger, waitFor } from '../../helpers.ts'

const DIR = mkdtempSync(join(tmpdir(), 'sovra-faults-'))
const pools: IsolatePool[] = []
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close(0)))
  rmSync(DIR, { recursive: true, force: true })
})

// A plain Workers module that misbehaves outside its handler's control flow, chosen by the path.
const FAULTY = `
export default {
  async fetch(request, env, ctx) {
    const path = new URL(request.url).pathname
    if (path === '/unhandled') Promise.reject(new Error('nobody awaits me'))
    if (path === '/timer') setTimeout(() => { throw new Error('timer after response') }, 20)
    if (path === '/loop-later') ctx.waitUntil(new Promise(() => setTimeout(() => { for (;;) {} }, 10)))
    return new Response('ok')
  },
}
`

async function faultyPool() {
  const main = join(DIR, 'faulty.js')
  writeFileSync(main, FAULTY)
  const bundle = await bundleFunction({ name: 'faulty', main }, DIR)
  const records: InvocationRecord[] = []
  const events: IsolateEvent[] = []
  const p = new IsolatePool({
    name: 'faulty',
    bundle,
    env: { vars: {}, secrets: {} },
    limits: { timeout_ms: 400, memory_mb: 64, max_body_bytes: 1024 * 1024 },
    isolates: { min: 1, max: 1, concurrency: 1, queue: 16 },
    observer: { onInvocation: (r) => void records.push(r), onIsolate: (e) => void events.push(e) },
  })
  pools.push(p)
  await p.start()
  return { pool: p, records, events, version: bundle.version }
}

describe('isolate faults', () => {
  it('reports an unhandled rejection as a fault event with the invocation, version and stack, not on stderr', async () => {
    const { pool: p, events, version } = await faultyPool()
    const stderr = vi.spyOn(process.stderr, 'write')
    try {
      const res = await p.fetch(new Request('http://local/unhandled'), { invocationId: 'inv-unhandled' })
      expect(res.status).toBe(200)
      const fault = await waitFor(() => events.find((e) => e.event === 'fault'))
      expect(fault).toEqual({
        function: 'faulty',
        event: 'fault',
        reason: 'unhandled-rejection',
        version,
        invocationId: 'inv-unhandled',
        attributedTo: expect.stringMatching(/^(running|last-started)$/),
        error: { name: 'Error', message: 'nobody awaits me', stack: expect.stringContaining('faulty') },
      })
      // The isolate carries on.
      // (retried: under load a first try can outlast the 400 ms deadline while an isolate starts)
      expect(
        await waitFor(async () => (await p.fetch(new Request('http://local/'))).status === 200 || undefined, 30_000),
      ).toBe(true)
      expect(stderr.mock.calls.map((c) => String(c[0])).join('')).not.toMatch(/nobody awaits me/)
    } finally {
      stderr.mockRestore()
    }
  })

  it('logs the exception of a timer that throws after the response with the crash, naming the invocation', async () => {
    const { pool: p, events, version } = await faultyPool()
    const res = await p.fetch(new Request('http://local/timer'), { invocationId: 'inv-timer' })
    expect(res.status).toBe(200)
    const exit = await waitFor(() => events.find((e) => e.event === 'exit'))
    expect(exit).toEqual({
      function: 'faulty',
      event: 'exit',
      reason: 'crash',
      version,
      invocationId: 'inv-timer',
      attributedTo: 'last-started',
      error: { name: 'Error', message: 'timer after response', stack: expect.stringContaining('faulty') },
    })
    // Replaced: the next request is served.
    // (retried: under load a first try can outlast the 400 ms deadline while an isolate starts)
    expect(
      await waitFor(async () => (await p.fetch(new Request('http://local/'))).status === 200 || undefined, 30_000),
    ).toBe(true)
  })

  it('names the invocation whose deadline replaced the isolate (waitUntil work that never yields)', async () => {
    const { pool: p, events, records } = await faultyPool()
    const res = await p.fetch(new Request('http://local/loop-later'), { invocationId: 'inv-loop' })
    expect(res.status).toBe(200)
    const exit = await waitFor(() => events.find((e) => e.event === 'exit'), 5000)
    expect(exit).toMatchObject({ reason: 'timeout', invocationId: 'inv-loop', attributedTo: 'deadline' })
    expect(records.find((r) => r.invocation.id === 'inv-loop')).toMatchObject({ outcome: 'timeout' })
  })
})

describe('logIsolateEvent', () => {
  it('writes one structured line per fault or replacement, with function, version, invocation and error fields', () => {
    const log = captureLogger()
    const error = { name: 'Error', message: 'boom', stack: 'Error: boom\n    at x' }
    logIsolateEvent(log, { function: 'f', event: 'spawn' })
    logIsolateEvent(log, { function: 'f', event: 'exit', reason: 'unavailable' })
    logIsolateEvent(log, {
      function: 'f',
      event: 'fault',
      reason: 'unhandled-rejection',
      version: 'v1',
      invocationIds: ['a', 'b'],
      attributedTo: 'running',
      error,
    })
    logIsolateEvent(log, {
      function: 'f',
      event: 'exit',
      reason: 'crash',
      version: 'v1',
      invocationId: 'c',
      attributedTo: 'last-started',
      error,
    })
    logIsolateEvent(log, { function: 'f', event: 'init-error', reason: 'boom', version: 'v1', error })
    logIsolateEvent(log, {
      function: 'f',
      event: 'exit',
      reason: 'timeout',
      version: 'v1',
      invocationId: 'd',
      attributedTo: 'deadline',
    })
    expect(log.lines).toEqual([
      {
        level: 'error',
        msg: 'unhandled rejection in function',
        function: 'f',
        version: 'v1',
        reason: 'unhandled-rejection',
        invocation_ids: ['a', 'b'],
        attributed_to: 'running',
        error,
      },
      {
        level: 'error',
        msg: 'isolate replaced',
        function: 'f',
        version: 'v1',
        reason: 'crash',
        invocation_id: 'c',
        attributed_to: 'last-started',
        error,
      },
      { level: 'error', msg: 'isolate failed to load', function: 'f', version: 'v1', reason: 'boom', error },
      {
        level: 'warn',
        msg: 'isolate replaced',
        function: 'f',
        version: 'v1',
        reason: 'timeout',
        invocation_id: 'd',
        attributed_to: 'deadline',
      },
    ])
  })
})
