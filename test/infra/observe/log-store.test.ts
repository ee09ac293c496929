import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'

import {
  keepsLine,
  LOG_FILE,
  LogStore,
  logFiles,
  readLogFiles,
  type LogEntry,
} from '../../../infra/observe/log-store.ts'
import { createLogger } from '../../../infra/observe/logger.ts'
import { consoleLogger } from '../../../runtime/hosts/local/observer.ts'

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sovra-logs-'))
  dirs.push(d)
  return d
}

/** A pino line as the host writes a function's console line. */
function consoleLine(n: number, fields: Partial<LogEntry> = {}): string {
  const e = {
    level: 'info',
    time: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    service: 'sovra',
    function: 'fn',
    version: 'v1',
    invocation_id: `inv-${n}`,
    trace_id: `inv-${n}`,
    source: 'console',
    console: 'log',
    ...fields,
    msg: `line ${n}`,
  }
  return `${JSON.stringify(e)}\n`
}

describe('keepsLine', () => {
  it('keeps console lines and lines about an invocation, not the ok line every invocation ends with', () => {
    expect(keepsLine(consoleLine(1))).toBe(true)
    expect(
      keepsLine('{"level":"info","time":"t","function":"f","invocation_id":"a","op":"chat","msg":"ai call"}\n'),
    ).toBe(true)
    expect(keepsLine('{"level":"error","time":"t","invocation_id":"a","msg":"invocation failed"}\n')).toBe(true)
    expect(keepsLine('{"level":"info","time":"t","invocation_id":"a","status":200,"msg":"invocation"}\n')).toBe(false)
    expect(keepsLine('{"level":"info","time":"t","url":"http://x","msg":"sovra listening"}\n')).toBe(false)
    // Text inside a message is escaped: it never passes for the field.
    expect(keepsLine('{"level":"info","time":"t","msg":"\\"source\\":\\"console\\""}\n')).toBe(false)
  })
})

describe('LogStore', () => {
  it('keeps the newest lines in memory, up to its ring size', () => {
    const store = new LogStore({ ringLines: 3 })
    for (let n = 1; n <= 5; n++) store.write(consoleLine(n))
    expect(store.recent().map((e) => e.msg)).toEqual(['line 3', 'line 4', 'line 5'])
    expect(store.recent({ invocation: 'inv-4' }).map((e) => e.msg)).toEqual(['line 4'])
    expect(store.recent({ since: Date.UTC(2026, 0, 1, 0, 0, 5) }).map((e) => e.msg)).toEqual(['line 5'])
  })

  it('rotates the files at the size cap and keeps a bounded number of them', () => {
    const dir = tempDir()
    const lineBytes = Buffer.byteLength(consoleLine(10))
    const cap = lineBytes * 3 + 10
    const store = new LogStore({ ringLines: 2, fileBytes: cap, files: 3 })
    store.open(dir)
    for (let n = 10; n < 40; n++) store.write(consoleLine(n))
    store.flush()
    const files = logFiles(dir, 3)
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual(['functions.2.ndjson', 'functions.1.ndjson', LOG_FILE])
    for (const f of files) expect(statSync(f).size).toBeLessThanOrEqual(cap)
    // Oldest first, and only the newest lines survive: 3 files of 3 lines.
    const read = readLogFiles(dir, {}, 3).map((e) => e.msg)
    expect(read).toEqual(Array.from({ length: 9 }, (_, i) => `line ${31 + i}`))
    expect(readFileSync(join(dir, LOG_FILE), 'utf8')).toContain('"msg":"line 39"')
  })

  it('answers from the files when memory does not reach back far enough, and from memory when it does', () => {
    const dir = tempDir()
    const store = new LogStore({ ringLines: 2 })
    store.open(dir)
    for (let n = 1; n <= 4; n++) store.write(consoleLine(n))
    expect(store.history({ since: Date.UTC(2026, 0, 1, 0, 0, 2) }).map((e) => e.msg)).toEqual([
      'line 2',
      'line 3',
      'line 4',
    ])
    expect(store.history({ invocation: 'inv-1' }).map((e) => e.msg)).toEqual(['line 1'])
    // A store reopened on the folder (the host restarted) still finds the earlier run's lines.
    const again = new LogStore()
    again.open(dir)
    expect(again.history({ fn: 'fn' })).toHaveLength(4)
  })

  it('tells followers each new line, and ends them at close', () => {
    const store = new LogStore()
    const seen: string[] = []
    let ended = 0
    store.follow(
      (e) => seen.push(e.msg),
      () => ended++,
    )
    store.write(consoleLine(1))
    store.write('{"level":"info","time":"t","msg":"sovra listening"}\n')
    store.close()
    store.write(consoleLine(2))
    expect(seen).toEqual(['line 1'])
    expect(ended).toBe(1)
  })

  it("is a logger's tap: a function's console line written by the host lands in it, structured", () => {
    const store = new LogStore()
    const sink = new Writable({ write: (_c, _e, cb) => cb() })
    const log = createLogger({ level: 'info', destination: sink, tap: store })
    consoleLogger(log)({
      function: 'echo',
      version: 'abc123',
      method: 'warn',
      message: 'marker 42',
      invocationId: 'inv-9',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    })
    consoleLogger(log)({ function: 'echo', version: 'abc123', method: 'log', message: 'at load' })
    log.info({ invocation_id: 'inv-9', status: 200 }, 'invocation')
    expect(store.recent()).toEqual([
      expect.objectContaining({
        level: 'warn',
        function: 'echo',
        version: 'abc123',
        invocation_id: 'inv-9',
        trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
        source: 'console',
        console: 'warn',
        msg: 'marker 42',
      }),
      expect.objectContaining({ level: 'info', function: 'echo', msg: 'at load' }),
    ])
    expect(store.recent()[1]).not.toHaveProperty('invocation_id')
  })
})
