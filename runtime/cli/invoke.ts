import { STATUS_CODES } from 'node:http'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { FunctionSet } from '../hosts/local/functions.ts'
import { invocationLogger } from '../hosts/local/observer.ts'
import { createLogger } from '../../infra/observe/logger.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import { createBucketProvider } from '../../infra/deploy/project-state.ts'
import type { Command } from './command.ts'
import { startPools } from '../../infra/pools/start.ts'

const USAGE =
  'sovra invoke <fn> [--method M] [--path P] [--data JSON|@file] [--header k:v]... [--scheduled [--cron EXPR]] [--config FILE] [--env NAME]'
const OPTIONS = {
  ...COMMON_OPTIONS,
  method: { type: 'string', short: 'X' },
  path: { type: 'string', short: 'P' },
  data: { type: 'string', short: 'd' },
  header: { type: 'string', short: 'H', multiple: true },
  scheduled: { type: 'boolean' },
  cron: { type: 'string' },
} as const

/**
 * `sovra invoke`: runs one function once in a real isolate, without a server, and prints the response (status
 * line, headers, body, streamed as it comes) or the scheduled run's result. Exit 1 on a 5xx or a failed run.
 */
export const invokeCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, OPTIONS, USAGE, 1)
    if (values.help) return (io.out(USAGE), 0)
    const name = positionals[0]
    if (name === undefined) throw new SovraError('ERR_USAGE', `missing the function name\nusage: ${USAGE}`)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const fn = project.functions.find((f) => f.name === name)
    if (fn === undefined) {
      throw new SovraError(
        'ERR_USAGE',
        `unknown function ${JSON.stringify(name)}; functions in ${project.file}: ${project.functions.map((f) => f.name).join(', ')}`,
      )
    }
    const headers = new Headers()
    for (const h of values.header ?? []) {
      const colon = h.indexOf(':')
      if (colon <= 0)
        throw new SovraError('ERR_USAGE', `--header: expected "name: value", received ${JSON.stringify(h)}`)
      headers.append(h.slice(0, colon).trim(), h.slice(colon + 1).trim())
    }
    let body: string | undefined
    if (values.data !== undefined) {
      body = values.data.startsWith('@') ? readFileSync(resolve(values.data.slice(1)), 'utf8') : values.data
      if (!headers.has('content-type') && isJson(body)) headers.set('content-type', 'application/json')
    }
    const method = (values.method ?? (body === undefined ? 'GET' : 'POST')).toUpperCase()
    const path = values.path ?? (fn.routes[0] ?? '/').replace(/\*$/, '')
    if (!path.startsWith('/'))
      throw new SovraError('ERR_USAGE', `--path: expected a path starting with "/", received ${JSON.stringify(path)}`)
    const log = createLogger({ level: process.env['SOVRA_LOG_LEVEL'] ?? 'warn', destination: process.stderr })
    // A function that binds env.AI gets the config's pools, started for this one invocation.
    const pools = !fn.bindings.some((b) => b.type === 'ai')
      ? undefined
      : await startPools(project, { state: values.state, log, onLog: () => undefined })
    let set: FunctionSet
    try {
      set = await FunctionSet.load(project, {
        only: [name],
        isolates: { min: 1, max: 1 },
        services: { buckets: createBucketProvider(project), ...(pools === undefined ? {} : { ai: pools.router }) },
        observer: { onInvocation: invocationLogger(log) },
      })
    } catch (e) {
      await pools?.close()
      throw e
    }
    try {
      const { pool } = set.get(name) as NonNullable<ReturnType<FunctionSet['get']>>
      if (values.scheduled) {
        const result = await pool.run(
          'scheduled',
          { cron: values.cron ?? fn.crons[0] ?? '', scheduledTime: Date.now() },
          { trigger: 'invoke' },
        )
        io.out(
          result.ok
            ? 'scheduled: ok'
            : `scheduled: failed (${result.error?.code}: ${result.error?.message})${result.noRetry ? ' [noRetry]' : ''}`,
        )
        return result.ok ? 0 : 1
      }
      const init: RequestInit = { method, headers }
      if (body !== undefined) init.body = body
      const response = await pool.fetch(new Request(`http://127.0.0.1${path}`, init), { trigger: 'invoke' })
      io.out(`HTTP ${response.status} ${response.statusText || (STATUS_CODES[response.status] ?? '')}`.trimEnd())
      for (const [k, v] of response.headers) io.out(`${k}: ${v}`)
      io.out('')
      if (response.body !== null) {
        const decoder = new TextDecoder()
        const write = io.write ?? ((s: string) => void process.stdout.write(s))
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>)
          write(decoder.decode(chunk, { stream: true }))
        write('\n')
      }
      return response.status >= 500 ? 1 : 0
    } finally {
      await set.close(1000)
      await pools?.close()
    }
  },
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}
