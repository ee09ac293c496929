import { resolve } from 'node:path'
import { AsyncLocalStorage } from 'node:async_hooks'

import type { Project } from '../config/resolve.ts'
import { reviveError, SovraError } from '../core/errors.ts'
import { actor } from '../../infra/deploy/project-state.ts'
import { findHost, lostHost } from './admin.ts'
import type { Io } from './command.ts'

/** The admin endpoint a running host runs control-plane commands at, for the CLI. */
export const CONTROL_PATH = '/_sovra/control/run'
/** The header a loopback caller names itself with (claimed: the OS user, or `SOVRA_ACTOR`). */
export const ACTOR_HEADER = 'x-sovra-actor'
/** Options a forwarded command drops: the host runs it on its own project and state. */
const LOCAL_OPTIONS = new Set(['--config', '-c', '--env', '-e', '--state', '--url'])
/** Environment variables a forwarded command takes along (the OpenWhisk target's credentials and address). */
const FORWARDED_ENV = /^SOVRA_OW_/

const hosted = new AsyncLocalStorage<true>()

/**
 * Runs `fn` as a command the host runs for the CLI: a nested {@link forwardToHost} then runs here, not back at the
 * host.
 * @param fn the command
 */
export function runInHost<T>(fn: () => T): T {
  return hosted.run(true, fn)
}

/**
 * The arguments without the options that name a local project, state or host (`--config F`, `--state=D`, ...).
 * @param args a command's arguments
 */
export function withoutLocalOptions(args: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string
    const name = a.includes('=') ? a.slice(0, a.indexOf('=')) : a
    if (!LOCAL_OPTIONS.has(name)) out.push(a)
    else if (!a.includes('=')) i++
  }
  return out
}

/**
 * The arguments with one positional file path made absolute (the host resolves paths from its own folder).
 * @param args a command's arguments
 * @param path the positional as typed, if any
 */
export function withAbsolutePath(args: readonly string[], path: string | undefined): string[] {
  return path === undefined ? [...args] : args.map((a) => (a === path ? resolve(path) : a))
}

/**
 * Runs a control-plane command (deploy, rollout, approve, approvals, audit, keys, versions) at the host that holds
 * the project's state, when one runs: `--url` or `SOVRA_URL`, else the host recorded in the state folder. Its output
 * streams back line by line; its exit code is returned, and its error is thrown here as if it ran here. Undefined
 * when no host runs (the command then opens the state itself) or when this already runs inside the host.
 * @param command the command's name
 * @param args its arguments as typed
 * @param io where its output goes
 * @param where the project, the state override and `--url`
 */
export async function forwardToHost(
  command: string,
  args: readonly string[],
  io: Io,
  where: { project: Project; state: string | undefined; url?: string | undefined },
): Promise<number | undefined> {
  if (hosted.getStore() === true) return undefined
  const host = await findHost(where.url, where.project, where.state)
  if (!host.found) return undefined
  const url = host.url
  const env = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => FORWARDED_ENV.test(e[0]) && e[1] !== undefined),
  )
  const token = process.env['SOVRA_TOKEN']
  let res: Response
  try {
    res = await fetch(`${url}${CONTROL_PATH}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        [ACTOR_HEADER]: actor(),
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify({ command, args: withoutLocalOptions(args), env }),
    })
  } catch (error) {
    throw lostHost(host, `${command} (POST ${CONTROL_PATH})`, error)
  }
  if (!res.ok || res.body === null) {
    const body = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } }
    throw reviveError({
      code: body.error?.code ?? 'ERR_UPSTREAM',
      message: `${body.error?.message ?? res.statusText} (the host at ${url}, HTTP ${res.status})`,
    })
  }
  let exit: number | undefined
  let pending = ''
  const decoder = new TextDecoder()
  const handle = (line: string): void => {
    if (line === '') return
    const m = JSON.parse(line) as {
      out?: string
      err?: string
      exit?: number
      error?: { code?: string; message?: string }
    }
    if (m.out !== undefined) io.out(m.out)
    if (m.err !== undefined) io.err(m.err)
    if (m.exit !== undefined) exit = m.exit
    if (m.error !== undefined)
      throw reviveError({ code: m.error.code ?? 'ERR_INTERNAL', message: m.error.message ?? 'failed at the host' })
  }
  for await (const chunk of res.body) {
    pending += decoder.decode(chunk, { stream: true })
    let nl: number
    while ((nl = pending.indexOf('\n')) >= 0) {
      handle(pending.slice(0, nl))
      pending = pending.slice(nl + 1)
    }
  }
  handle(pending)
  if (exit === undefined)
    throw new SovraError('ERR_HOST_UNREACHABLE', `the host at ${url} stopped before ${command} finished; see its log`)
  return exit
}
