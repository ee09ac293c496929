import { createReadStream, openAsBlob, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { Readable } from 'node:stream'
import { loadConfig } from '../config/load.ts'
import { isSovraError, SovraError } from '../core/errors.ts'
import { validateBucketName, validateKey } from '../core/object-keys.ts'
import { callHost, findHost, lostHost } from './admin.ts'
import { openLocalState } from '../../infra/deploy/local-state.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import { writeBytes, type Command, type Io } from './command.ts'

const USAGE =
  'sovra objects put <bucket>/<key> --file F [--content-type T] | get <bucket>/<key> | ls <bucket>[/prefix] | rm <bucket>/<key>  [--url URL] [--state DIR]'
const OPTIONS = {
  ...COMMON_OPTIONS,
  file: { type: 'string', short: 'f' },
  'content-type': { type: 'string' },
  url: { type: 'string' },
} as const

/**
 * Splits `<bucket>/<key>` and checks both with the rules the stores apply (runtime/core/object-keys.ts), before any
 * URL is built from them: a "." or ".." segment would otherwise be normalised away by the URL and name another key,
 * another bucket or a function route (issue 11).
 */
function split(target: string | undefined, needKey: boolean): { bucket: string; key: string } {
  if (target === undefined) throw new SovraError('ERR_USAGE', `missing <bucket>/<key>\nusage: ${USAGE}`)
  const slash = target.indexOf('/')
  const bucket = slash < 0 ? target : target.slice(0, slash)
  const key = slash < 0 ? '' : target.slice(slash + 1)
  if (bucket === '' || (needKey && key === ''))
    throw new SovraError('ERR_USAGE', `expected <bucket>/<key>, received ${JSON.stringify(target)}`)
  try {
    validateBucketName(bucket)
    if (needKey) validateKey(key)
  } catch (error) {
    if (isSovraError(error)) throw new SovraError('ERR_USAGE', `${error.message}\nusage: ${USAGE}`)
    throw error
  }
  return { bucket, key }
}

/** The admin path of an object: each key segment percent-encoded, so none can be read as a path step. */
function objectPath(bucket: string, key: string): string {
  return `/_sovra/objects/${encodeURIComponent(bucket)}/${key.split('/').map(encodeURIComponent).join('/')}`
}

/** The file to upload, checked up front: a missing file is a usage error, not a stack trace. */
function inputFile(file: string | undefined): { path: string; size: number } {
  if (file === undefined) throw new SovraError('ERR_USAGE', `put needs --file F\nusage: ${USAGE}`)
  const path = resolve(file)
  let size: number | undefined
  try {
    const stat = statSync(path)
    size = stat.isFile() ? stat.size : undefined
  } catch {
    size = undefined
  }
  if (size === undefined)
    throw new SovraError('ERR_USAGE', `--file: expected a readable file, received ${JSON.stringify(file)} (${path})`)
  return { path, size }
}

async function failed(res: Response, io: Io): Promise<number> {
  const body = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } }
  io.err(`${body.error?.code ?? res.status}: ${body.error?.message ?? res.statusText}`)
  return 1
}

/**
 * `sovra objects`: put, get, ls, rm on the project's buckets. Through the project's running host when there is one
 * (PGlite is single-process), else on the state directly; either way a write fires object triggers as a function's
 * write does. Bytes go through untouched both ways: files are streamed up, objects streamed to stdout.
 */
export const objectsCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const [sub, ...rest] = args
    const { values, positionals } = parseCommandArgs(rest, OPTIONS, USAGE, 1)
    if (values.help || sub === undefined) return (io.out(USAGE), sub === undefined ? 2 : 0)
    if (!['put', 'get', 'ls', 'rm'].includes(sub))
      throw new SovraError(
        'ERR_USAGE',
        `unknown objects subcommand ${JSON.stringify(sub)}; valid: put, get, ls, rm\nusage: ${USAGE}`,
      )
    // Arguments first: a bad key or file is refused before any host is asked or any URL is built.
    const { bucket, key } = split(positionals[0], sub !== 'ls')
    const file = sub === 'put' ? inputFile(values.file) : undefined
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const host = await findHost(values.url, project, values.state)
    const contentType = values['content-type']
    switch (sub) {
      case 'put': {
        const { path, size } = file as { path: string; size: number }
        const res = await callHost(host, objectPath(bucket, key), {
          method: 'PUT',
          // A file-backed Blob: fetch streams it from disk with its length, the file is never held in memory.
          body: await openAsBlob(path),
          headers: contentType === undefined ? {} : { 'content-type': contentType },
        })
        if (res !== undefined) {
          if (!res.ok) return failed(res, io)
          const put = (await res.json().catch(() => ({}))) as { size?: number }
          io.out(`put ${bucket}/${key} (${put.size ?? size} bytes) via ${host.url}`)
          return 0
        }
        const state = await openLocalState(project, values.state)
        try {
          const body = Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>
          const put = await state
            .buckets(bucket)
            .put(key, body, contentType === undefined ? {} : { httpMetadata: { contentType } })
          io.out(
            `put ${bucket}/${key} (${put.size} bytes, etag ${put.etag})${state.queue === undefined ? '' : '; its object events are queued for the next host start'}`,
          )
          return 0
        } finally {
          await state.close()
        }
      }
      case 'get': {
        const path = objectPath(bucket, key)
        const res = await callHost(host, path)
        if (res !== undefined) {
          if (!res.ok) return failed(res, io)
          try {
            await writeBytes(io, res.body)
          } catch (error) {
            throw lostHost(host, `GET ${path} (the output is incomplete)`, error)
          }
          return 0
        }
        const state = await openLocalState(project, values.state)
        try {
          const obj = await state.buckets(bucket).get(key)
          if (obj === null) return (io.err(`ERR_NOT_FOUND: no object ${bucket}/${key}`), 1)
          await writeBytes(io, obj.body)
          return 0
        } finally {
          await state.close()
        }
      }
      case 'ls': {
        const prefix = key
        const res = await callHost(
          host,
          `/_sovra/objects/${encodeURIComponent(bucket)}?prefix=${encodeURIComponent(prefix)}`,
        )
        let objects: Array<{ key: string; size: number; uploaded: string | Date }>
        if (res !== undefined) {
          if (!res.ok) return failed(res, io)
          objects = ((await res.json()) as { objects: typeof objects }).objects
        } else {
          const state = await openLocalState(project, values.state)
          try {
            objects = [...(await state.buckets(bucket).list({ prefix })).objects]
          } finally {
            await state.close()
          }
        }
        for (const o of objects)
          io.out(`${new Date(o.uploaded).toISOString()}  ${String(o.size).padStart(10)}  ${o.key}`)
        return 0
      }
      default: {
        const res = await callHost(host, objectPath(bucket, key), { method: 'DELETE' })
        if (res !== undefined) return res.ok ? (io.out(`removed ${bucket}/${key}`), 0) : failed(res, io)
        const state = await openLocalState(project, values.state)
        try {
          await state.buckets(bucket).delete(key)
          io.out(`removed ${bucket}/${key}`)
          return 0
        } finally {
          await state.close()
        }
      }
    }
  },
}
