import { Hono } from 'hono'

import { createAuthenticator } from '../auth/authenticate.ts'
import { isLoopback } from '../auth/loopback.ts'
import { principalMiddleware } from '../auth/middleware.ts'
import type { Project } from '../config/resolve.ts'
import { SovraError } from '../core/errors.ts'
import type { LogEntry, LogFilter, LogStore } from '../../infra/observe/log-store.ts'
import type { AdminApp, AdminEnv } from '../hosts/app/host-app.ts'

/**
 * `GET /_sovra/logs?fn=&invocation=&since=&follow=1`: the functions' log lines the host kept (console output, `ai
 * call` lines, failed invocations), as NDJSON, oldest first; with `follow=1` the response stays open and carries
 * each new line until the client goes away or the host stops. `since` is an ISO 8601 time. What `sovra logs` reads
 * while a host runs. Who may: as the control plane, with `[auth] jwks` a verified member of `[auth] operators`,
 * without it a loopback caller only (the lines carry what functions printed: data of their tier).
 * @param options the project (its `[auth]`) and the host's log store
 * @example
 * admin: [control.admin, logsAdmin({ project, store: logs })]
 */
export function logsAdmin(options: { project: Project; store: LogStore }): AdminApp {
  const { project, store } = options
  const app = new Hono<AdminEnv>()
  app.get('/logs', principalMiddleware(createAuthenticator(project.auth, project.tiers.names)), (c) => {
    mayRead(project, c.get('auth').token === true, c.get('principal'), c.env?.incoming?.socket.remoteAddress)
    const filter = readFilter(c.req.query())
    const follow = c.req.query('follow')
    if (follow !== undefined && follow !== '1' && follow !== '0')
      throw new SovraError('ERR_BAD_REQUEST', `follow: expected 1 or 0, received ${JSON.stringify(follow)}`)
    const headers = { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' }
    const history = store.history(filter)
    if (follow !== '1') return new Response(history.map(ndjson).join(''), { headers })
    const encoder = new TextEncoder()
    let stop: (() => void) | undefined
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        if (history.length > 0) controller.enqueue(encoder.encode(history.map(ndjson).join('')))
        // Subscribed in the same turn as the history was read: no line falls between the two.
        stop = store.follow(
          (e) => {
            if (!matches(e, filter)) return
            try {
              controller.enqueue(encoder.encode(ndjson(e)))
            } catch {
              stop?.()
            }
          },
          () => {
            try {
              controller.close()
            } catch {
              // Already cancelled by the client.
            }
          },
        )
      },
      cancel() {
        stop?.()
      },
    })
    return new Response(body, { headers })
  })
  return app
}

const ndjson = (e: LogEntry): string => `${JSON.stringify(e)}\n`

function matches(e: LogEntry, f: LogFilter): boolean {
  return (f.fn === undefined || e.function === f.fn) && (f.invocation === undefined || e.invocation_id === f.invocation)
}

/** The filter from the query; a `since` that is not a time is refused with what is valid. */
function readFilter(query: Record<string, string>): LogFilter {
  const filter: LogFilter = {}
  if (query['fn'] !== undefined && query['fn'] !== '') filter.fn = query['fn']
  if (query['invocation'] !== undefined && query['invocation'] !== '') filter.invocation = query['invocation']
  const since = query['since']
  if (since !== undefined && since !== '') {
    const ms = Date.parse(since)
    if (Number.isNaN(ms))
      throw new SovraError(
        'ERR_BAD_REQUEST',
        `since: expected an ISO 8601 time such as 2026-11-01T09:30:00Z, received ${JSON.stringify(since)}`,
      )
    filter.since = ms
  }
  return filter
}

/** Refuses a caller who may not read the logs: see {@link logsAdmin}. */
function mayRead(
  project: Project,
  verified: boolean,
  principal: { subject: string; groups: readonly string[] },
  remote: string | undefined,
): void {
  if (project.auth.jwks !== undefined) {
    if (!verified)
      throw new SovraError(
        'ERR_UNAUTHENTICATED',
        'the function logs need a verified token on this host ([auth] jwks is set): send Authorization: Bearer <JWT> (the CLI reads SOVRA_TOKEN)',
      )
    if (!principal.groups.some((g) => project.auth.operators.includes(g)))
      throw new SovraError(
        'ERR_FORBIDDEN',
        `${principal.subject} may not read the function logs: operators are members of ${project.auth.operators.join(', ')} ([auth] operators); the token's groups are ${principal.groups.join(', ') || '(none)'}`,
      )
    return
  }
  if (!isLoopback(remote))
    throw new SovraError(
      'ERR_FORBIDDEN',
      `the function logs answer only loopback callers on a host without [auth] jwks; received a call from ${remote ?? '(unknown address)'}`,
    )
}
