import { STATUS_CODES } from 'node:http'
import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { FunctionSet } from '../hosts/local/functions.ts'
import { invocationLogger } from '../hosts/local/observer.ts'
import { logIsolateEvent } from '../isolate/isolate-log.ts'
import { createLogger } from '../../infra/observe/logger.ts'
import { COMMON_OPTIONS, parseCommandArgs, readFileFlag } from './args.ts'
import { parseSchedule } from '../../triggers/cron/schedule.ts'
import { createBucketProvider } from '../../infra/deploy/project-state.ts'
import type { Command } from './command.ts'
import { startPools } from '../../infra/pools/start.ts'
import type { Project } from '../config/resolve.ts'
import type { IsolatePool } from '../isolate/pool.ts'

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
      try {
        if (colon <= 0) throw new TypeError('no colon')
        headers.append(h.slice(0, colon).trim(), h.slice(colon + 1).trim())
      } catch {
        throw new SovraError(
          'ERR_USAGE',
          `--header: expected "name: value", received ${JSON.stringify(h)} (a name is a token such as x-api-key)`,
        )
      }
    }
    let body: string | undefined
    if (values.data !== undefined) {
      body = values.data.startsWith('@')
        ? readFileFlag(values.data.slice(1), '--data @file').toString('utf8')
        : values.data
      if (!headers.has('content-type') && isJson(body)) headers.set('content-type', 'application/json')
    }
    const method = checkMethod(values.method ?? (body === undefined ? 'GET' : 'POST'), body !== undefined)
    if (values.cron !== undefined) {
      if (values.scheduled !== true)
        throw new SovraError('ERR_USAGE', `--cron applies to --scheduled runs only\nusage: ${USAGE}`)
      try {
        parseSchedule({ function: name, cron: values.cron })
      } catch (error) {
        throw new SovraError('ERR_USAGE', `--cron: ${(error as Error).message}`, { cause: error })
      }
    }
    const path = values.path ?? (fn.routes[0] ?? '/').replace(/\*$/, '')
    if (!path.startsWith('/'))
      throw new SovraError('ERR_USAGE', `--path: expected a path starting with "/", received ${JSON.stringify(path)}`)
    const run = await startSingleRun(project, name, { state: values.state })
    try {
      const { pool } = run
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
      await run.close()
    }
  },
}

/** One function started alone in this process for one run: its isolate pool, and how to stop it. */
export interface SingleRun {
  pool: IsolatePool
  /** Stops the function and the inference pools started for it. */
  close(): Promise<void>
}

/**
 * Starts one function alone in this process for one run, without a host: a single isolate, the project's buckets
 * and, when it binds env.AI, the config's inference pools (started for this run only). `sovra invoke` and
 * `sovra trigger cron` with no host running both run through it, so what a function gets cannot differ between them
 * (issue 11: the trigger's own copy started no pools, and an AI-bound cron failed with "runs no inference pools").
 * Invocation and isolate lines go to stderr at `SOVRA_LOG_LEVEL` (default warn).
 * @param project the resolved project
 * @param name the function, one of the project's
 * @param options the state folder override (`--state`), where tiny models and pool state live
 * @example
 * const run = await startSingleRun(project, 'nightly', { state: undefined })
 * try { await run.pool.run('scheduled', { cron: '0 2 * * *', scheduledTime: Date.now() }) } finally { await run.close() }
 */
export async function startSingleRun(
  project: Project,
  name: string,
  options: { state: string | undefined },
): Promise<SingleRun> {
  const fn = project.functions.find((f) => f.name === name)
  if (fn === undefined)
    throw new SovraError(
      'ERR_USAGE',
      `unknown function ${JSON.stringify(name)}; functions in ${project.file}: ${project.functions.map((f) => f.name).join(', ')}`,
    )
  const log = createLogger({ level: process.env['SOVRA_LOG_LEVEL'] ?? 'warn', destination: process.stderr })
  // A function that binds env.AI gets the config's pools, started for this one run.
  const pools = !fn.bindings.some((b) => b.type === 'ai')
    ? undefined
    : await startPools(project, { state: options.state, log, onLog: () => undefined })
  let set: FunctionSet
  try {
    set = await FunctionSet.load(project, {
      only: [name],
      isolates: { min: 1, max: 1 },
      services: { buckets: createBucketProvider(project), ...(pools === undefined ? {} : { ai: pools.router }) },
      observer: { onInvocation: invocationLogger(log), onIsolate: (e) => logIsolateEvent(log, e) },
    })
  } catch (e) {
    await pools?.close()
    throw e
  }
  const { pool } = set.get(name) as NonNullable<ReturnType<FunctionSet['get']>>
  return {
    pool,
    async close() {
      try {
        await set.close(1000)
      } finally {
        await pools?.close()
      }
    },
  }
}

// RFC 9110 section 5.6.2: a method is a token. Fetch forbids CONNECT, TRACE and TRACK (fetch spec, "forbidden method").
const METHOD_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const FORBIDDEN_METHODS = ['CONNECT', 'TRACE', 'TRACK']

function checkMethod(value: string, hasBody: boolean): string {
  const method = value.toUpperCase()
  if (!METHOD_TOKEN.test(method) || FORBIDDEN_METHODS.includes(method))
    throw new SovraError(
      'ERR_USAGE',
      `--method: expected an HTTP method such as GET, POST, PUT, PATCH, DELETE (not ${FORBIDDEN_METHODS.join(', ')}), received ${JSON.stringify(value)}`,
    )
  if (hasBody && (method === 'GET' || method === 'HEAD'))
    throw new SovraError('ERR_USAGE', `--method ${method} cannot carry --data; use POST, PUT or PATCH, or drop --data`)
  return method
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}
