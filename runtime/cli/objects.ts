import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { adminUrl, callHost } from './admin.ts'
import { openLocalState } from '../../infra/deploy/local-state.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Command, Io } from './command.ts'

const USAGE =
  'sovra objects put <bucket>/<key> --file F [--content-type T] | get <bucket>/<key> | ls <bucket>[/prefix] | rm <bucket>/<key>  [--url URL] [--state DIR]'
const OPTIONS = {
  ...COMMON_OPTIONS,
  file: { type: 'string', short: 'f' },
  'content-type': { type: 'string' },
  url: { type: 'string' },
} as const

function split(target: string | undefined, needKey: boolean): { bucket: string; key: string } {
  if (target === undefined) throw new SovraError('ERR_USAGE', `missing <bucket>/<key>\nusage: ${USAGE}`)
  const slash = target.indexOf('/')
  const bucket = slash < 0 ? target : target.slice(0, slash)
  const key = slash < 0 ? '' : target.slice(slash + 1)
  if (bucket === '' || (needKey && key === ''))
    throw new SovraError('ERR_USAGE', `expected <bucket>/<key>, received ${JSON.stringify(target)}`)
  return { bucket, key }
}

async function failed(res: Response, io: Io): Promise<number> {
  const body = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } }
  io.err(`${body.error?.code ?? res.status}: ${body.error?.message ?? res.statusText}`)
  return 1
}

/**
 * `sovra objects`: put, get, ls, rm on the project's buckets. Through the running host's admin API when one
 * answers (PGlite is single-process), else on the state directly; either way a write fires object triggers as a
 * function's write does.
 */
export const objectsCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const [sub, ...rest] = args
    const { values, positionals } = parseCommandArgs(rest, OPTIONS, USAGE, 1)
    if (values.help || sub === undefined) return (io.out(USAGE), sub === undefined ? 2 : 0)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const url = await adminUrl(values.url, project, values.state)
    const write = io.write ?? ((s: string) => void process.stdout.write(s))
    switch (sub) {
      case 'put': {
        const { bucket, key } = split(positionals[0], true)
        if (values.file === undefined) throw new SovraError('ERR_USAGE', `put needs --file F\nusage: ${USAGE}`)
        const body = readFileSync(resolve(values.file))
        const contentType = values['content-type']
        const res = await callHost(url, `/_sovra/objects/${bucket}/${encodeKey(key)}`, {
          method: 'PUT',
          body,
          headers: contentType === undefined ? {} : { 'content-type': contentType },
        })
        if (res !== undefined)
          return res.ok ? (io.out(`put ${bucket}/${key} (${body.byteLength} bytes) via ${url}`), 0) : failed(res, io)
        const state = await openLocalState(project, values.state)
        try {
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
        const { bucket, key } = split(positionals[0], true)
        const res = await callHost(url, `/_sovra/objects/${bucket}/${encodeKey(key)}`)
        if (res !== undefined) {
          if (!res.ok) return failed(res, io)
          write(Buffer.from(await res.arrayBuffer()).toString('utf8'))
          return 0
        }
        const state = await openLocalState(project, values.state)
        try {
          const obj = await state.buckets(bucket).get(key)
          if (obj === null) return (io.err(`ERR_NOT_FOUND: no object ${bucket}/${key}`), 1)
          write(await obj.text())
          return 0
        } finally {
          await state.close()
        }
      }
      case 'ls': {
        const { bucket, key: prefix } = split(positionals[0], false)
        const res = await callHost(url, `/_sovra/objects/${bucket}?prefix=${encodeURIComponent(prefix)}`)
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
      case 'rm': {
        const { bucket, key } = split(positionals[0], true)
        const res = await callHost(url, `/_sovra/objects/${bucket}/${encodeKey(key)}`, { method: 'DELETE' })
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
      default:
        throw new SovraError(
          'ERR_USAGE',
          `unknown objects subcommand ${JSON.stringify(sub)}; valid: put, get, ls, rm\nusage: ${USAGE}`,
        )
    }
  },
}

function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/')
}
