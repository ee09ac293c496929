import { realpathSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Project } from '../config/resolve.ts'
import { SovraError } from '../core/errors.ts'
import type { HostIdentity } from '../hosts/app/host-app.ts'
import { DEFAULT_PORT } from '../hosts/local/defaults.ts'
import { stateDir } from '../../infra/deploy/project-state.ts'
import { hostFilePath, recordedHostUrl } from './host-file.ts'

/** How long a command waits for a host's health answer before it takes the host for absent. */
const HEALTH_TIMEOUT_MS = 2000
/** Where `sovra start` listens unless told otherwise. */
const DEFAULT_URL = `http://127.0.0.1:${DEFAULT_PORT}`

/** Where a command's host URL came from. */
export type HostSource = '--url' | 'SOVRA_URL' | 'host.json' | 'default'

/** The host a command talks to, as {@link findHost} resolved it. */
export interface AdminHost {
  /** The admin API base URL, without a trailing slash: the host's, or the default address when none was found. */
  url: string
  /** True when a host of this project answers at `url`; false: the command works on the state folder itself. */
  found: boolean
  /** Where `url` came from. */
  source: HostSource
}

/**
 * Finds the host a command talks to. An explicit URL (`--url`, else the `SOVRA_URL` environment variable) must answer
 * as a sovra host of a project with this name, else the command fails: it never falls back to the state folder behind
 * the user's back. Without one: the host recorded in `<state>/host.json` (any port), else the default address, each
 * used only when its `/_sovra/health` says it serves this config and this state folder; a host of another project on
 * the default port is not this one's. None found: `found` is false and the command works on the state itself.
 * @param url the `--url` value
 * @param project the resolved project
 * @param state the state folder override (`--state`)
 * @param env where `SOVRA_URL` is read (default: the process environment)
 * @example
 * const host = await findHost(values.url, project, values.state)
 * const res = await callHost(host, '/_sovra/pools') // undefined: no host, work on the state
 */
export async function findHost(
  url: string | undefined,
  project: Project,
  state: string | undefined,
  env: Record<string, string | undefined> = process.env,
): Promise<AdminHost> {
  const fromEnv = env['SOVRA_URL'] === '' ? undefined : env['SOVRA_URL']
  const explicit = url ?? fromEnv
  if (explicit !== undefined) {
    const source = url === undefined ? 'SOVRA_URL' : '--url'
    const base = baseUrl(explicit, source)
    const health = await probe(base)
    if (health.kind === 'unreachable')
      throw new SovraError(
        'ERR_HOST_UNREACHABLE',
        `no host answers at ${base} (${source}): ${health.reason}; start this project's host there (sovra start), or drop ${source} so the command finds the host itself or works on the state folder`,
      )
    if (health.kind === 'foreign')
      throw new SovraError(
        'ERR_HOST_UNREACHABLE',
        `${base} (${source}) is not a sovra host: GET /_sovra/health answered ${health.reason}; valid: the base URL of a sovra host, e.g. ${DEFAULT_URL}`,
      )
    // A remote host's config path differs from this checkout's; its project name may not.
    if (health.project !== undefined && health.project.name !== project.name)
      throw new SovraError(
        'ERR_USAGE',
        `the host at ${base} (${source}) serves project ${JSON.stringify(health.project.name)} (${health.project.config}), not ${JSON.stringify(project.name)} (${project.file}); give the URL of this project's host, or the --config of that project`,
      )
    return { url: base, found: true, source }
  }
  const dir = stateDir(project, state)
  const recorded = recordedHostUrl(hostFilePath(project, state))?.replace(/\/+$/, '')
  const candidates: Array<{ url: string; source: HostSource }> = [{ url: DEFAULT_URL, source: 'default' }]
  if (recorded !== undefined && recorded !== DEFAULT_URL) candidates.unshift({ url: recorded, source: 'host.json' })
  for (const candidate of candidates) {
    const health = await probe(candidate.url)
    if (health.kind === 'sovra' && servesThis(health.project, project, dir)) return { ...candidate, found: true }
  }
  return { url: DEFAULT_URL, found: false, source: 'default' }
}

/**
 * Calls the host's admin API. Undefined when {@link findHost} found no host (then the command works on the state
 * itself); a host that was found and then fails to answer is an error, never a fallback to the state folder (the
 * request may have taken effect there, and the host holds that state).
 * @param host the host, from {@link findHost}
 * @param path the path under its base URL
 * @param init the request
 */
export async function callHost(host: AdminHost, path: string, init?: RequestInit): Promise<Response | undefined> {
  if (!host.found) return undefined
  try {
    return await fetch(`${host.url}${path}`, init)
  } catch (error) {
    throw lostHost(host, `${init?.method ?? 'GET'} ${path}`, error)
  }
}

/**
 * The error for a host that stopped answering during a request or while sending its response.
 * @param host the host
 * @param during what was under way, e.g. `PUT /_sovra/objects/docs/a.md`
 * @param error what fetch or the body stream threw
 */
export function lostHost(host: AdminHost, during: string, error: unknown): SovraError {
  return new SovraError(
    'ERR_HOST_UNREACHABLE',
    `the host at ${host.url} (${host.source}) stopped answering during ${during}: ${describeFailure(error)}; whether it took effect is unknown and nothing was done on the state folder instead; check the host, then retry`,
    { cause: error },
  )
}

type Health =
  | { kind: 'sovra'; project: HostIdentity | undefined }
  | { kind: 'unreachable'; reason: string }
  | { kind: 'foreign'; reason: string }

/** Asks `/_sovra/health`; a 503 (starting or stopping) is still a host, holding its state. */
async function probe(base: string): Promise<Health> {
  let res: Response
  try {
    res = await fetch(`${base}/_sovra/health`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) })
  } catch (error) {
    return { kind: 'unreachable', reason: describeFailure(error) }
  }
  const body = (await res.json().catch(() => undefined)) as { status?: unknown; project?: unknown } | undefined
  if (typeof body?.status !== 'string') return { kind: 'foreign', reason: `${res.status} without a sovra health body` }
  const p = body.project as Partial<HostIdentity> | undefined
  const identity =
    typeof p?.name === 'string' && typeof p.config === 'string'
      ? { name: p.name, config: p.config, ...(typeof p.state === 'string' ? { state: p.state } : {}) }
      : undefined
  return { kind: 'sovra', project: identity }
}

/** Whether a host's identity is this project on this state folder (a host that reports none cannot be checked). */
function servesThis(identity: HostIdentity | undefined, project: Project, dir: string): boolean {
  if (identity === undefined) return false
  return samePath(identity.config, project.file) && (identity.state === undefined || samePath(identity.state, dir))
}

function samePath(a: string, b: string): boolean {
  const real = (p: string): string => {
    try {
      return realpathSync.native(p)
    } catch {
      return resolve(p)
    }
  }
  return a === b || real(a) === real(b)
}

function baseUrl(value: string, source: HostSource): string {
  let url: URL | undefined
  try {
    url = new URL(value)
  } catch {
    url = undefined
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash)
    throw new SovraError(
      'ERR_USAGE',
      `${source}: expected the base URL of a sovra host (http:// or https://, no query), e.g. ${DEFAULT_URL}; received ${JSON.stringify(value)}`,
    )
  return url.href.replace(/\/+$/, '')
}

function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  if (error.name === 'TimeoutError') return `no answer within ${HEALTH_TIMEOUT_MS} ms`
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined
  if (typeof cause?.code === 'string') return cause.code
  return typeof cause?.message === 'string' ? `${error.message} (${cause.message})` : error.message
}
