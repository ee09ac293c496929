import type { IncomingMessage } from 'node:http'
import type { Context, MiddlewareHandler } from 'hono'
import type { Principal } from '../core/context.ts'
import type { Authenticate, Authenticated, Caller } from './authenticate.ts'

/** The hono variables {@link principalMiddleware} sets: `c.get('principal')`, `c.get('auth')`. */
export interface PrincipalVariables {
  principal: Principal
  auth: Authenticated
}

/** Bindings of an app served by @hono/node-server: the Node request carries the socket's remote address. */
export interface NodeBindings {
  incoming?: Pick<IncomingMessage, 'socket'> | undefined
}

/**
 * The caller of a Node request (headers and socket address), for hosts that serve with node:http.
 * @param incoming the Node request
 */
export function callerFromIncoming(incoming: Pick<IncomingMessage, 'headers' | 'socket'>): Caller {
  return {
    header: (name) => {
      const v = incoming.headers[name]
      return Array.isArray(v) ? v.join(', ') : v
    },
    remoteAddress: incoming.socket.remoteAddress,
  }
}

/**
 * The caller of a Web Request; the remote address comes from the server (Node: the socket), none in memory.
 * @param request the request
 * @param remoteAddress the peer's address, when the server knows it
 */
export function callerFromRequest(request: Request, remoteAddress: string | undefined): Caller {
  return { header: (name) => request.headers.get(name) ?? undefined, remoteAddress }
}

/**
 * Creates the hono middleware that authenticates every request it sees (see `createAuthenticator`) and sets
 * `c.get('principal')`; a refusal is thrown as ERR_UNAUTHENTICATED, so the app's one error handler answers the
 * 401 with its reason. The remote address (dev principals are loopback-only) comes from @hono/node-server's
 * `c.env.incoming`, or from `remoteAddress` (hono's `GetConnInfo` idea: a small port per runtime).
 * @param authenticate the authenticator built from `Project.auth`
 * @param options how to read the peer's address on another runtime
 * @example
 * const app = new Hono<{ Bindings: NodeBindings; Variables: PrincipalVariables }>()
 * app.use('/v1/*', principalMiddleware(createAuthenticator(project.auth, project.tiers.names)))
 * app.get('/v1/me', (c) => c.json(c.get('principal')))
 */
export function principalMiddleware(
  authenticate: Authenticate,
  options: { remoteAddress?: (c: Context) => string | undefined } = {},
): MiddlewareHandler<{ Bindings: NodeBindings; Variables: PrincipalVariables }> {
  const remote =
    options.remoteAddress ?? ((c: Context) => (c.env as NodeBindings | undefined)?.incoming?.socket.remoteAddress)
  return async (c, next) => {
    const who = await authenticate(callerFromRequest(c.req.raw, remote(c)))
    c.set('principal', who.principal)
    c.set('auth', who)
    await next()
  }
}
