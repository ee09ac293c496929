import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { stateDir } from '../../infra/deploy/project-state.ts'
import { logsDir, readLogFiles, type LogEntry, type LogFilter } from '../../infra/observe/log-store.ts'
import { callHost, findHost, lostHost } from './admin.ts'
import { COMMON_OPTIONS, parseCommandArgs, parseIsoDate } from './args.ts'
import type { Command, Io } from './command.ts'

const USAGE = 'sovra logs [fn] [--invocation ID] [--since 10m|2h|ISO-TIME] [--follow] [--json] [--url URL]'
const OPTIONS = {
  ...COMMON_OPTIONS,
  invocation: { type: 'string', short: 'i' },
  since: { type: 'string', short: 's' },
  follow: { type: 'boolean', short: 'f' },
  json: { type: 'boolean' },
  url: { type: 'string' },
} as const

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * Reads `--since`: a duration back from now (`30s`, `10m`, `2h`, `7d`) or an ISO 8601 date or time.
 * @param value the flag's value
 * @param now the time a duration counts back from (ms since the epoch)
 * @returns ms since the epoch
 */
export function parseSince(value: string, now = Date.now()): number {
  const m = /^(\d{1,6})([smhd])$/.exec(value.trim())
  if (m !== null) return now - Number(m[1]) * (UNITS[m[2] as string] as number)
  try {
    return parseIsoDate(value, '--since')
  } catch (error) {
    throw new SovraError(
      'ERR_USAGE',
      `--since: expected a duration back from now (30s, 10m, 2h, 7d) or an ISO 8601 date or time such as 2026-11-01T09:30:00Z, received ${JSON.stringify(value)}`,
      { cause: error },
    )
  }
}

const SHOWN = new Set(['level', 'time', 'service', 'function', 'version', 'invocation_id', 'trace_id', 'msg'])
const QUIET = new Set(['source', 'console'])

/**
 * One line as `sovra logs` prints it: `TIME LEVEL fn@version invocation message`, then, for a line that is not
 * console output (`ai call`, `invocation failed`), its other fields as `key=value`.
 * @param e the line
 */
export function formatLogLine(e: LogEntry): string {
  const where = e.function === undefined ? '-' : `${e.function}@${e.version ?? '?'}`
  const extra = Object.entries(e)
    .filter(([k]) => !SHOWN.has(k) && !(e['source'] === 'console' && QUIET.has(k)))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
  const text = extra.length === 0 ? e.msg : `${e.msg} ${extra.join(' ')}`
  return `${e.time} ${e.level.padEnd(5)} ${where} ${e.invocation_id ?? '-'} ${text}`
}

/**
 * `sovra logs`: the functions' log lines (console output with function, version, invocation and trace id; `ai
 * call` lines; failed invocations), oldest first. From the running host (its admin API, `/_sovra/logs`), which with
 * `--follow` keeps streaming new lines until Ctrl-C; without a host, from the files it left in `<state>/logs`.
 */
export const logsCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, OPTIONS, USAGE, 1)
    if (values.help) return (io.out(USAGE), 0)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const fn = positionals[0]
    if (fn !== undefined && !project.functions.some((f) => f.name === fn))
      throw new SovraError(
        'ERR_USAGE',
        `no function ${JSON.stringify(fn)} in ${project.file}; valid: ${project.functions.map((f) => f.name).join(', ')}`,
      )
    const filter: LogFilter = { fn, invocation: values.invocation }
    if (values.since !== undefined) filter.since = parseSince(values.since)
    const print = (e: LogEntry): void => io.out(values.json === true ? JSON.stringify(e) : formatLogLine(e))
    const host = await findHost(values.url, project, values.state)
    if (host.found) return fromHost(host, filter, values.follow === true, print, io)
    for (const e of readLogFiles(logsDir(stateDir(project, values.state)), filter)) print(e)
    if (values.follow === true) io.err('sovra logs: no host of this project is running; nothing to follow')
    return 0
  },
}

/** Reads `/_sovra/logs` line by line as the host sends it (a followed response never ends by itself). */
async function fromHost(
  host: Awaited<ReturnType<typeof findHost>>,
  filter: LogFilter,
  follow: boolean,
  print: (e: LogEntry) => void,
  io: Io,
): Promise<number> {
  const query = new URLSearchParams()
  if (filter.fn !== undefined) query.set('fn', filter.fn)
  if (filter.invocation !== undefined) query.set('invocation', filter.invocation)
  if (filter.since !== undefined) query.set('since', new Date(filter.since).toISOString())
  if (follow) query.set('follow', '1')
  const path = `/_sovra/logs?${query.toString()}`
  const token = process.env['SOVRA_TOKEN']
  const res = (await callHost(
    host,
    path,
    token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } },
  )) as Response
  if (!res.ok || res.body === null) return (io.err(`sovra logs: ${res.status}: ${await res.text()}`), 1)
  const decoder = new TextDecoder()
  let rest = ''
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      rest += decoder.decode(chunk, { stream: true })
      const lines = rest.split('\n')
      rest = lines.pop() ?? ''
      for (const line of lines) if (line !== '') print(JSON.parse(line) as LogEntry)
    }
  } catch (error) {
    throw lostHost(host, `GET ${path}`, error)
  }
  return 0
}
