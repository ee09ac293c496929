import { randomUUID } from 'node:crypto'
import { Hono } from 'hono'

import { errorToResponse, isSovraError, SovraError } from '../../core/errors.ts'
import type { Logger, Metrics } from '../../core/observe.ts'
import { ADMIN_PREFIX, type Project } from '../../config/resolve.ts'
import type { FunctionConfig } from '../../config/schema.ts'
import { RouteTable } from '../../../triggers/http/route-table.ts'
import { createAuthenticator, type Authenticate } from '../../auth/authenticate.ts'
import {
  callerFromIncoming,
  callerFromRequest,
  principalMiddleware,
  type PrincipalVariables,
} from '../../auth/middleware.ts'
import type { Executor, NodeEnv } from './executor.ts'

/** The hono env of the admin API: Node bindings and the principal set by the principal middleware. */
export type AdminEnv = { Bindings: NodeEnv; Variables: PrincipalVariables }

/** An admin sub-app: routes relative to `/_sovra` (e.g. `/events`), mounted by {@link createHostApp}. */
export type AdminApp = Hono<AdminEnv>

/** What {@link createHostApp} needs. */
export interface HostAppOptions {
  project: Project
  executor: Executor
  log: Logger
  metrics: Metrics
  /** Admin sub-apps mounted under `/_sovra` after the built-in ones (health, metrics, functions, whoami). */
  admin?: readonly AdminApp[]
  /** True once shutdown began: health says so and responses close their connections. */
  shuttingDown?: () => boolean
  /** The authenticator (default: from `project.auth`). */
  authenticate?: Authenticate
  /** Called once per function request with its outcome, refused callers included (the gateway's metrics and log). */
  onResponse?: (outcome: RequestOutcome) => void
  /** The state folder this host holds, if any: health reports it (see {@link HostIdentity}). */
  state?: string | undefined
}

/**
 * The project a host serves, as `GET /_sovra/health` reports it under `project`: CLI commands check it before they
 * use a host they found, so a host of another project on the default port is never taken for this one's.
 */
export interface HostIdentity {
  name: string
  /** The absolute path of the config file. */
  config: string
  /** The absolute state folder, when the host holds one (the embedded host). */
  state?: string
}

/** How one function request ended, as {@link HostAppOptions.onResponse} sees it. */
export interface RequestOutcome {
  fn: string | undefined
  path: string
  method: string
  status: number
  durationMs: number
  /** The caller's subject, once authenticated. */
  subject?: string | undefined
  /** The executor's response, when there is one. */
  response?: Response | undefined
  /** The error body's code and message, when the request failed. */
  error?: { code: string; message: string } | undefined
}

/** A host's HTTP handler: served by @hono/node-server, or called in memory. */
export interface HostApp {
  fetch(request: Request, env?: NodeEnv): Response | Promise<Response>
  /** In-memory request, like hono's `app.request()`: a path or URL. */
  request(input: string, init?: RequestInit): Response | Promise<Response>
}

/**
 * Creates the HTTP app every host serves (the embedded host with its isolate executor, the gateway with its
 * OpenWhisk executor): function routes from the config (method-agnostic, most specific wins), each caller
 * authenticated by runtime/auth before its body is read, then run by the executor; the admin API under `/_sovra/`
 * (health, metrics, functions, whoami, then the host's sub-apps; the console mounts at `/_sovra/ui`). One error
 * mapping for both (core `errorToResponse`).
 * @param options project, executor, logger, metrics, admin sub-apps
 * @example
 * const app = createHostApp({ project, executor, log, metrics, admin: [eventsApp] })
 * const res = await app.request('/v1/echo?x=1')
 */
export function createHostApp(options: HostAppOptions): HostApp {
  const { project, executor, log, onResponse } = options
  const shuttingDown = options.shuttingDown ?? (() => false)
  const table = new RouteTable(
    project.functions.flatMap((f) => f.routes.map((pattern) => ({ pattern, target: f }))),
    (f: FunctionConfig) => f.name,
  )
  // One authentication step for every function request ([auth]: JWT, dev principals on loopback, else anonymous).
  const authenticate = options.authenticate ?? createAuthenticator(project.auth, project.tiers.names)
  const admin = adminApp(options, authenticate, shuttingDown)

  const toResponse = (error: unknown, path: string, invocationId?: string): Response => {
    if (!(error instanceof SovraError)) log.error({ err: error, path }, 'host error')
    const res = errorToResponse(error, invocationId)
    // An unread upload, or a host that is going away: the connection is not reused.
    if ((error instanceof SovraError && error.code === 'ERR_BODY_TOO_LARGE') || shuttingDown())
      res.headers.set('connection', 'close')
    return res
  }
  admin.notFound((c) =>
    errorToResponse(new SovraError('ERR_NOT_FOUND', `No admin endpoint ${c.req.method} ${c.req.path}`)),
  )
  admin.onError((error, c) => toResponse(error, c.req.path))

  /** A function request: the route table, the caller, the executor; errors mapped like the admin API's. */
  async function invoke(request: Request, url: string, path: string, env: NodeEnv | undefined): Promise<Response> {
    const started = onResponse === undefined ? 0 : performance.now()
    let fn: string | undefined
    let subject: string | undefined
    // Made before the body is read: a request refused once its caller is known (413) carries it too.
    const invocationId = randomUUID()
    try {
      const match = table.match(path)
      if (match === undefined) throw new SovraError('ERR_NOT_FOUND', `No function route matches ${path}`)
      fn = match.target.name
      // The listener stays open while in-flight requests drain, so health can say "stopping"; new work goes elsewhere.
      if (shuttingDown())
        throw new SovraError('ERR_SHUTTING_DOWN', `this host is shutting down; retry ${path} on another instance`, {
          details: { retry_after: 1 },
        })
      const incoming = env?.incoming
      // Before the body is read: a refused caller costs no upload. In memory there is no socket (not loopback).
      const caller = await authenticate(
        incoming === undefined ? callerFromRequest(request, undefined) : callerFromIncoming(incoming),
      )
      subject = caller.principal.subject
      const response = await executor.fetch({
        fn: match.target,
        request,
        url,
        path,
        env,
        caller,
        invocationId,
      })
      if (shuttingDown()) response.headers.set('connection', 'close')
      onResponse?.({
        fn,
        path,
        method: request.method,
        status: response.status,
        durationMs: performance.now() - started,
        subject,
        response,
      })
      return response
    } catch (error) {
      // From authentication on the request is an invocation; before it (404, 401, 503) there is none to name.
      const res = toResponse(error, path, subject === undefined ? undefined : invocationId)
      // The invocation id the caller got leads to this line (a host with onResponse writes its own line).
      if (onResponse === undefined && isSovraError(error) && error.code === 'ERR_BODY_TOO_LARGE')
        log.warn(
          { function: fn, invocation_id: invocationId, path, error: { code: error.code, message: error.message } },
          'request refused',
        )
      if (onResponse !== undefined) {
        const e =
          error instanceof SovraError
            ? { code: error.code, message: error.message }
            : { code: 'ERR_HANDLER', message: String(error) }
        onResponse({
          fn,
          path,
          method: request.method,
          status: res.status,
          durationMs: performance.now() - started,
          subject,
          error: e,
        })
      }
      return res
    }
  }

  // Function requests skip hono's router (the admin API's routes would cost every request a match); they go
  // straight to the route table. Measured: about +12% req/s on the benchmark once the admin API grew.
  const fetch = (request: Request, env?: NodeEnv): Response | Promise<Response> => {
    const url = request.url
    const pathStart = url.indexOf('/', url.indexOf('//') + 2)
    const queryStart = url.indexOf('?', pathStart)
    const path = queryStart < 0 ? url.slice(pathStart) : url.slice(pathStart, queryStart)
    if (path.startsWith(ADMIN_PREFIX)) return admin.fetch(request, env)
    return invoke(request, url, path, env)
  }
  return {
    fetch,
    request: (input, init) => fetch(new Request(input.startsWith('http') ? input : `http://localhost${input}`, init)),
  }
}

/** The admin API: the built-in endpoints every host has, then the host's sub-apps, under `/_sovra`. */
function adminApp(options: HostAppOptions, authenticate: Authenticate, shuttingDown: () => boolean): Hono<AdminEnv> {
  const { executor, metrics } = options
  const base = new Hono<AdminEnv>()
  // Who the host takes the caller for: the same step as function routes (check a token or a dev principal).
  base.get('/whoami', principalMiddleware(authenticate), (c) => c.json(c.get('principal')))
  base.get('/health', (c) => {
    const stopping = shuttingDown()
    const { ready, functions } = executor.health()
    const ok = ready && !stopping
    const project: HostIdentity = { name: options.project.name, config: options.project.file }
    if (options.state !== undefined) project.state = options.state
    return c.json({ status: ok ? 'ok' : stopping ? 'stopping' : 'starting', functions, project }, ok ? 200 : 503)
  })
  base.get('/metrics', async () => {
    const { contentType, body } = await metrics.render()
    return new Response(body, { headers: { 'content-type': contentType } })
  })
  base.get('/functions', (c) => c.json(executor.describe()))
  for (const sub of options.admin ?? []) base.route('/', sub)
  const valid =
    "GET /_sovra/health, /_sovra/metrics, /_sovra/functions, /_sovra/whoami (and the host's own: events, objects, triggers, pools on the embedded host; ai on the gateway)"
  base.all('*', (c) => {
    throw new SovraError('ERR_NOT_FOUND', `No admin endpoint ${c.req.method} ${c.req.path}; valid: ${valid}`)
  })
  return new Hono<AdminEnv>().route('/_sovra', base)
}
