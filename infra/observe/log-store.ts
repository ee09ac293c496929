import { appendFileSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { LogTap } from './logger.ts'

/** Lines the host keeps in memory (the newest; older ones are in the files). */
export const LOG_RING_LINES = 10_000
/** Bytes of one log file before it rotates. */
export const LOG_FILE_BYTES = 8 * 1024 * 1024
/** Files kept: `functions.ndjson` and `functions.1.ndjson` ... (oldest last), so at most 32 MiB on disk. */
export const LOG_FILES = 4
/** The current file's name; rotated ones are `functions.<n>.ndjson`. */
export const LOG_FILE = 'functions.ndjson'
/** How long lines wait in memory before they are appended, and how many bytes make an earlier append. */
const FLUSH_MS = 200
const FLUSH_BYTES = 64 * 1024

/** One kept line, as pino wrote it: time, level, msg, and the function fields. */
export interface LogEntry {
  time: string
  level: string
  msg: string
  function?: string
  version?: string
  invocation_id?: string
  trace_id?: string
  [field: string]: unknown
}

/** Which lines to return: one function, one invocation, none older than `since` (ms since the epoch). */
export interface LogFilter {
  fn?: string | undefined
  invocation?: string | undefined
  since?: number | undefined
}

/** Sizes of a {@link LogStore} (tests use small ones). */
export interface LogStoreOptions {
  ringLines?: number
  fileBytes?: number
  files?: number
}

/**
 * The log folder of a state folder: `<state>/logs`.
 * @param state the state folder
 */
export function logsDir(state: string): string {
  return join(state, 'logs')
}

/**
 * Whether a serialised line is one `sovra logs` shows: a function's console line, or any line about an invocation
 * (`ai call`, a failed invocation, an isolate replaced), except the info line every invocation ends with, which at
 * thousands of requests a second would push everything else out. Checked on the text: JSON escapes the quotes of
 * any such text inside a message, and pino writes `msg` last.
 * @param line one line as pino serialised it
 */
export function keepsLine(line: string): boolean {
  if (!line.includes('"invocation_id":"') && !line.includes('"source":"console"')) return false
  return !(line.startsWith('{"level":"info"') && /"msg":"invocation"}\n?$/.test(line))
}

/**
 * Whether an entry passes a filter.
 * @param e the entry
 * @param f the filter
 */
export function matchesLog(e: LogEntry, f: LogFilter): boolean {
  if (f.fn !== undefined && e.function !== f.fn) return false
  if (f.invocation !== undefined && e.invocation_id !== f.invocation) return false
  return f.since === undefined || Date.parse(e.time) >= f.since
}

/**
 * The log files of a folder, oldest first (what exists of `functions.<files-1>.ndjson` ... `functions.ndjson`).
 * @param dir the log folder
 * @param files how many files rotation keeps
 */
export function logFiles(dir: string, files = LOG_FILES): string[] {
  const names = Array.from({ length: files }, (_, i) => join(dir, i === 0 ? LOG_FILE : `functions.${i}.ndjson`))
  return names.reverse().filter((p) => statSync(p, { throwIfNoEntry: false })?.isFile() === true)
}

/**
 * Reads the kept lines from the files of a log folder, oldest first: what `sovra logs` shows when no host runs.
 * A line cut short (the host was killed mid-write) is skipped.
 * @param dir the log folder
 * @param filter which lines
 * @param files how many files rotation keeps
 */
export function readLogFiles(dir: string, filter: LogFilter = {}, files = LOG_FILES): LogEntry[] {
  const out: LogEntry[] = []
  for (const file of logFiles(dir, files)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      // Cheap checks on the text first: most lines of a busy host are another function's.
      if (line === '' || (filter.invocation !== undefined && !line.includes(filter.invocation))) continue
      const e = parse(line)
      if (e !== undefined && matchesLog(e, filter)) out.push(e)
    }
  }
  return out
}

function parse(line: string): LogEntry | undefined {
  try {
    const e = JSON.parse(line) as LogEntry
    return typeof e === 'object' && e !== null && typeof e.time === 'string' ? e : undefined
  } catch {
    return undefined
  }
}

/**
 * The host's function log: a logger tap ({@link LogTap}) that keeps the lines {@link keepsLine} selects, the newest
 * {@link LOG_RING_LINES} in memory and all of them appended to `<dir>/functions.ndjson`, rotated at
 * {@link LOG_FILE_BYTES} with {@link LOG_FILES} files kept, so the folder stays bounded. Appends are gathered for up
 * to {@link FLUSH_MS}: one write per line would cost the host thread a syscall per console line.
 * @example
 * const logs = new LogStore()
 * const log = createLogger({ tap: logs })
 * logs.open(logsDir(state))
 */
export class LogStore implements LogTap {
  readonly #ring: Array<LogEntry | undefined>
  #next = 0
  #count = 0
  readonly #fileBytes: number
  readonly #files: number
  #dir: string | undefined
  #size = 0
  #pending: string[] = []
  #pendingBytes = 0
  #timer: NodeJS.Timeout | undefined
  #closed = false
  #failed = false
  readonly #followers = new Set<{ onEntry(e: LogEntry): void; onEnd(): void }>()

  /** @param options ring and file sizes (default {@link LOG_RING_LINES}, {@link LOG_FILE_BYTES}, {@link LOG_FILES}) */
  constructor(options: LogStoreOptions = {}) {
    this.#ring = new Array<LogEntry | undefined>(Math.max(1, options.ringLines ?? LOG_RING_LINES))
    this.#fileBytes = options.fileBytes ?? LOG_FILE_BYTES
    this.#files = Math.max(1, options.files ?? LOG_FILES)
  }

  /** The log folder lines are appended to, once {@link open} named one. */
  get dir(): string | undefined {
    return this.#dir
  }

  /**
   * Appends kept lines to the files of `dir` from now on (created if missing); lines kept before stay in memory only.
   * @param dir the log folder, e.g. {@link logsDir}(state)
   */
  open(dir: string): void {
    this.flush()
    mkdirSync(dir, { recursive: true })
    this.#dir = dir
    this.#size = statSync(join(dir, LOG_FILE), { throwIfNoEntry: false })?.size ?? 0
    this.#closed = false
  }

  /**
   * Takes one serialised line (the logger's tap); keeps it when {@link keepsLine} says so.
   * @param line one line as pino serialised it
   */
  write(line: string): void {
    if (!keepsLine(line)) return
    const e = parse(line)
    if (e === undefined) return
    this.#ring[this.#next] = e
    this.#next = (this.#next + 1) % this.#ring.length
    this.#count = Math.min(this.#count + 1, this.#ring.length)
    for (const f of this.#followers) f.onEntry(e)
    if (this.#dir === undefined) return
    const text = line.endsWith('\n') ? line : `${line}\n`
    this.#pending.push(text)
    this.#pendingBytes += Buffer.byteLength(text)
    // After close nothing may wait for a timer: the process is about to exit.
    if (this.#closed || this.#pendingBytes >= FLUSH_BYTES) this.flush()
    else this.#timer ??= setTimeout(() => this.flush(), FLUSH_MS).unref()
  }

  /**
   * The kept lines in memory that pass a filter, oldest first.
   * @param filter which lines
   */
  recent(filter: LogFilter = {}): LogEntry[] {
    const out: LogEntry[] = []
    const start = (this.#next - this.#count + this.#ring.length) % this.#ring.length
    for (let i = 0; i < this.#count; i++) {
      const e = this.#ring[(start + i) % this.#ring.length]
      if (e !== undefined && matchesLog(e, filter)) out.push(e)
    }
    return out
  }

  /**
   * The kept lines that pass a filter, oldest first: from memory when it holds the whole window (`since` is no
   * older than its oldest line), else from the files, which reach further back (earlier runs too).
   * @param filter which lines
   */
  history(filter: LogFilter = {}): LogEntry[] {
    if (this.#dir === undefined) return this.recent(filter)
    const oldest = this.#count === 0 ? undefined : this.recent()[0]
    if (filter.since !== undefined && oldest !== undefined && Date.parse(oldest.time) <= filter.since)
      return this.recent(filter)
    this.flush()
    return readLogFiles(this.#dir, filter, this.#files)
  }

  /**
   * Calls `onEntry` with every line kept from now on, until the returned function is called or the store closes
   * (then `onEnd`).
   * @param onEntry called with each new line
   * @param onEnd called once when the store closes
   */
  follow(onEntry: (e: LogEntry) => void, onEnd: () => void): () => void {
    const follower = { onEntry, onEnd }
    this.#followers.add(follower)
    return () => void this.#followers.delete(follower)
  }

  /** Appends the lines waiting in memory, rotating the files at the size cap. A failing disk drops them (once said). */
  flush(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    const dir = this.#dir
    if (dir === undefined || this.#pending.length === 0) return
    const lines = this.#pending
    this.#pending = []
    this.#pendingBytes = 0
    try {
      let chunk = ''
      let chunkBytes = 0
      for (const line of lines) {
        const bytes = Buffer.byteLength(line)
        // A file holds at least one line, so a line over the cap is still written (in a file of its own).
        if (this.#size + chunkBytes + bytes > this.#fileBytes && this.#size + chunkBytes > 0) {
          if (chunk !== '') appendFileSync(join(dir, LOG_FILE), chunk)
          chunk = ''
          chunkBytes = 0
          this.#rotate(dir)
        }
        chunk += line
        chunkBytes += bytes
      }
      if (chunk !== '') appendFileSync(join(dir, LOG_FILE), chunk)
      this.#size += chunkBytes
    } catch (error) {
      // Not through the logger: its tap is this store.
      if (!this.#failed)
        process.emitWarning(`sovra: function log lines could not be written to ${dir}: ${String(error)}`)
      this.#failed = true
    }
  }

  /** Ends every follower and writes what waits; lines kept later are appended at once. */
  close(): void {
    this.#closed = true
    this.flush()
    for (const f of this.#followers) f.onEnd()
    this.#followers.clear()
  }

  /** `functions.ndjson` becomes `functions.1.ndjson`, and so on; the oldest beyond {@link LOG_FILES} goes. */
  #rotate(dir: string): void {
    const name = (i: number): string => join(dir, i === 0 ? LOG_FILE : `functions.${i}.ndjson`)
    rmSync(name(this.#files - 1), { force: true })
    for (let i = this.#files - 2; i >= 0; i--) {
      if (statSync(name(i), { throwIfNoEntry: false }) !== undefined) renameSync(name(i), name(i + 1))
    }
    this.#size = 0
  }
}
