import { createHash, randomUUID } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { SovraError } from '../../runtime/core/errors.ts'
import type { ObjectEvent } from '../../runtime/core/handlers.ts'
import type {
  Bucket,
  BucketListOptions,
  BucketListResult,
  BucketObject,
  BucketObjectBody,
  BucketPutOptions,
  BucketPutValue,
} from '../../runtime/core/ports.ts'
import { validateBucketName, validateKey } from '../../runtime/core/object-keys.ts'
import { objectBody, objectMeta } from '../../runtime/core/object-body.ts'
import { listPage } from './list.ts'
import type { EventSink } from '../../triggers/object/queue.ts'

/** The trailer stored after an object's bytes. */
interface Trailer {
  key: string
  size: number
  etag: string
  uploaded: string
  contentType?: string
  customMetadata: Record<string, string>
}

/** Durable event hooks around each write (a crash in between leaves a staged event that recovery resolves). */
export type FsEventSink = EventSink

const TMP = '.tmp'
const MAX_NAME = 240
/**
 * When this process started. A temp file named with this process's pid but older than that was left by an earlier
 * process that had the same pid (a container's main process has the same pid on every start).
 */
const PROCESS_START = Date.now() - process.uptime() * 1000

/** The name of a put's temp file: the writer's pid first, so a later open can tell whether its writer is alive. */
function tempName(): string {
  return `pid${process.pid}-${randomUUID()}`
}

/** Whether a process with this pid exists (EPERM: it does, under another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Whether a temp file's put can no longer finish: its writer is gone (killed mid-put: SIGKILL, OOM, power loss), or
 * it is older than this process while named with this process's pid, or (a name without a pid, from before pids
 * were recorded) it was last written before the bucket was opened.
 */
async function isStaleTemp(name: string, path: string, openedAt: number): Promise<boolean> {
  const pid = /^pid(\d+)-/.exec(name)?.[1]
  if (pid === undefined) return (await stat(path)).mtimeMs < openedAt
  if (Number(pid) === process.pid) return (await stat(path)).mtimeMs < PROCESS_START
  return !alive(Number(pid))
}

/**
 * Removes the temp files of puts that can never finish from a bucket folder's `.tmp` (see {@link isStaleTemp});
 * those of live writers stay. Returns the names removed.
 * @param dir the bucket's folder
 * @param openedAt when the bucket was opened, ms since the epoch
 */
export async function sweepStaleTemp(dir: string, openedAt: number): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(join(dir, TMP))
  } catch {
    return []
  }
  const removed: string[] = []
  for (const name of names) {
    const path = join(dir, TMP, name)
    try {
      if (!(await isStaleTemp(name, path, openedAt))) continue
      await rm(path, { force: true })
      removed.push(name)
    } catch {
      // Renamed by its writer or removed by another sweep meanwhile: nothing left to do.
    }
  }
  return removed
}

/**
 * The file name of a key: "k" + base64url(key) when short enough, else "h" + sha256(key) (the key is in the
 * trailer). Either way no key can name a path outside the bucket's folder.
 */
function fileName(key: string): string {
  const encoded = `k${Buffer.from(key, 'utf8').toString('base64url')}`
  return encoded.length <= MAX_NAME ? encoded : `h${createHash('sha256').update(key).digest('hex')}`
}

let sequence = 0
/** Orders events on one key within this process, like S3's sequencer: hex, comparable as strings. */
function nextSequencer(): string {
  sequence = (sequence + 1) % 0x10000
  return `${Date.now().toString(16).padStart(12, '0')}${sequence.toString(16).padStart(4, '0')}`
}

/**
 * A bucket in a local folder with S3 semantics: one file per object holding its bytes then a JSON trailer
 * (key, size, MD5 etag, time, content type, user metadata) and the trailer's length, so a put is one atomic rename
 * of an fsynced temp file (named with the writer's pid; opening a bucket removes those of writers that are gone).
 * Writes and deletes report object events.
 *
 * @example
 * const bucket = new FsBucket('documents', '.sovra/state/buckets', { onEvent: (e) => queue.add(e) })
 * await bucket.put('policies/a.md', '# Policy', { httpMetadata: { contentType: 'text/markdown' } })
 */
export class FsBucket implements Bucket {
  readonly name: string
  readonly dir: string
  readonly #onEvent: ((event: ObjectEvent) => void | Promise<void>) | undefined
  readonly #sink: FsEventSink | undefined
  readonly #swept: Promise<string[]>

  /**
   * @param name the bucket name (S3 rules)
   * @param root the folder holding every bucket
   * @param options where object events go: `onEvent` after each write, or a durable `sink` around it
   */
  constructor(
    name: string,
    root: string,
    options: { onEvent?: (event: ObjectEvent) => void | Promise<void>; sink?: FsEventSink } = {},
  ) {
    validateBucketName(name)
    this.name = name
    this.dir = join(root, name)
    this.#onEvent = options.onEvent
    this.#sink = options.sink
    // A put killed mid-write leaves its temp file (never visible as an object); opening the bucket removes those of
    // writers that are gone (issue 11, R13), without waiting for it.
    this.#swept = sweepStaleTemp(this.dir, Date.now()).catch(() => [])
  }

  /** The temp files of interrupted puts removed when the bucket was opened (names in `.tmp`), once that is done. */
  sweptTemp(): Promise<string[]> {
    return this.#swept
  }

  /** Publishes a write (`apply`) with its event staged before and committed after. */
  async #publish(event: ObjectEvent, apply: () => Promise<void>): Promise<void> {
    const token = this.#sink === undefined ? undefined : await this.#sink.stage(event)
    try {
      await apply()
    } catch (error) {
      if (this.#sink !== undefined) await this.#sink.abort(token, `the write failed: ${(error as Error).message}`)
      throw error
    }
    if (this.#sink !== undefined) await this.#sink.commit(token)
    await this.#onEvent?.(event)
  }

  async put(key: string, value: BucketPutValue, options: BucketPutOptions = {}): Promise<BucketObject> {
    validateKey(key)
    const customMetadata = checkMetadata(options.customMetadata ?? {})
    const contentType = options.httpMetadata?.contentType ?? options.contentType
    await mkdir(join(this.dir, TMP), { recursive: true })
    const tmp = join(this.dir, TMP, tempName())
    const handle = await open(tmp, 'w')
    const md5 = createHash('md5')
    let size = 0
    try {
      for await (const chunk of chunksOf(value)) {
        md5.update(chunk)
        size += chunk.byteLength
        await writeAll(handle, chunk)
      }
      const trailer: Trailer = {
        key,
        size,
        etag: md5.digest('hex'),
        uploaded: new Date().toISOString(),
        customMetadata,
      }
      if (contentType !== undefined) trailer.contentType = contentType
      const json = Buffer.from(JSON.stringify(trailer))
      const length = Buffer.alloc(4)
      length.writeUInt32BE(json.byteLength)
      await writeAll(handle, json)
      await writeAll(handle, length)
      // Durable before visible: the data reaches the disk, then the rename publishes it whole.
      await handle.sync()
      await handle.close()
      const meta = toMeta(trailer)
      await this.#publish(this.#event('created', meta), () => rename(tmp, join(this.dir, fileName(key))))
      return meta
    } catch (error) {
      await handle.close().catch(() => undefined)
      await rm(tmp, { force: true })
      throw error
    }
  }

  async head(key: string): Promise<BucketObject | null> {
    validateKey(key)
    const trailer = await this.#trailer(fileName(key))
    return trailer === null || trailer.key !== key ? null : toMeta(trailer)
  }

  async get(key: string): Promise<BucketObjectBody | null> {
    validateKey(key)
    const path = join(this.dir, fileName(key))
    const trailer = await this.#trailer(fileName(key))
    if (trailer === null || trailer.key !== key) return null
    const stream =
      trailer.size === 0
        ? new ReadableStream<Uint8Array>({ start: (c) => c.close() })
        : // 1 MiB reads: the 64 KiB default made streamed hashing of large objects (model verification) 2-3x slower.
          (Readable.toWeb(
            createReadStream(path, { start: 0, end: trailer.size - 1, highWaterMark: 1 << 20 }),
          ) as ReadableStream<Uint8Array>)
    return objectBody(toMeta(trailer), stream)
  }

  async delete(keys: string | readonly string[]): Promise<void> {
    for (const key of typeof keys === 'string' ? [keys] : keys) {
      validateKey(key)
      const trailer = await this.#trailer(fileName(key))
      if (trailer === null) continue
      await this.#publish(this.#event('removed', toMeta(trailer)), () =>
        rm(join(this.dir, fileName(key)), { force: true }),
      )
    }
  }

  async list(options: BucketListOptions = {}): Promise<BucketListResult> {
    let names: string[]
    try {
      names = await readdir(this.dir)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') names = []
      else throw error
    }
    const keys = new Map<string, string>()
    for (const name of names) {
      if (name.startsWith('k')) keys.set(Buffer.from(name.slice(1), 'base64url').toString('utf8'), name)
      else if (name.startsWith('h')) {
        const trailer = await this.#trailer(name)
        if (trailer !== null) keys.set(trailer.key, name)
      }
    }
    const page = listPage([...keys.keys()], options)
    const objects: BucketObject[] = []
    for (const key of page.keys) {
      const trailer = await this.#trailer(keys.get(key) as string)
      if (trailer !== null) objects.push(toMeta(trailer))
    }
    return { objects, delimitedPrefixes: page.prefixes, truncated: page.truncated, cursor: page.cursor }
  }

  async #trailer(name: string): Promise<Trailer | null> {
    const path = join(this.dir, name)
    let handle: FileHandle
    try {
      handle = await open(path, 'r')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw error
    }
    try {
      const { size } = await handle.stat()
      const lengthBuf = Buffer.alloc(4)
      await handle.read(lengthBuf, 0, 4, size - 4)
      const length = lengthBuf.readUInt32BE(0)
      const json = Buffer.alloc(length)
      await handle.read(json, 0, length, size - 4 - length)
      return JSON.parse(json.toString('utf8')) as Trailer
    } catch (error) {
      throw new SovraError('ERR_INTERNAL', `object file ${path} is damaged (its trailer cannot be read)`, {
        cause: error,
      })
    } finally {
      await handle.close()
    }
  }

  #event(type: 'created' | 'removed', meta: BucketObject): ObjectEvent {
    return {
      type,
      bucket: this.name,
      key: meta.key,
      size: type === 'created' ? meta.size : undefined,
      etag: type === 'created' ? meta.etag : undefined,
      versionId: undefined,
      sequencer: nextSequencer(),
      contentType: type === 'created' ? meta.httpMetadata.contentType : undefined,
      metadata: type === 'created' ? meta.customMetadata : {},
      eventName: type === 'created' ? 's3:ObjectCreated:Put' : 's3:ObjectRemoved:Delete',
      time: new Date().toISOString(),
      source: 'fs',
    }
  }
}

/** User metadata within S3's 2 KiB. */
export function checkMetadata(meta: Record<string, string>): Record<string, string> {
  let bytes = 0
  for (const [k, v] of Object.entries(meta)) {
    if (typeof v !== 'string')
      throw new SovraError('ERR_BAD_REQUEST', `customMetadata.${k}: expected a string, received ${typeof v}`)
    bytes += Buffer.byteLength(k) + Buffer.byteLength(v)
  }
  if (bytes > 2048)
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `customMetadata is ${bytes} bytes; S3 allows 2048 (keys and values together)`,
    )
  return { ...meta }
}

function toMeta(t: Trailer): BucketObject {
  return objectMeta({
    key: t.key,
    size: t.size,
    etag: t.etag,
    uploaded: new Date(t.uploaded),
    contentType: t.contentType,
    customMetadata: t.customMetadata,
    version: undefined,
  })
}

async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset)
    offset += bytesWritten
  }
}

/**
 * The bytes of a put value, as chunks.
 * @param value string, bytes, stream or null
 */
export async function* chunksOf(value: BucketPutValue): AsyncGenerator<Uint8Array> {
  if (value === null || value === undefined) return
  if (typeof value === 'string') yield Buffer.from(value, 'utf8')
  else if (value instanceof Uint8Array) yield value
  else if (value instanceof ArrayBuffer) yield new Uint8Array(value)
  else if (typeof (value as ReadableStream<Uint8Array>).getReader === 'function') {
    for await (const chunk of value as unknown as AsyncIterable<Uint8Array>) yield chunk
  } else {
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `put: expected a string, ArrayBuffer, Uint8Array, ReadableStream or null, received ${typeof value}`,
    )
  }
}
