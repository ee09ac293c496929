import { Hono } from 'hono'

import type { Project } from '../config/resolve.ts'
import { SovraError } from '../core/errors.ts'
import { createAuthenticator } from '../auth/authenticate.ts'
import { isLoopback } from '../auth/loopback.ts'
import { principalMiddleware } from '../auth/middleware.ts'
import type { AdminApp, AdminEnv } from '../hosts/app/host-app.ts'
import type { Actor } from '../../infra/deploy/approvals.ts'
import { withActor } from '../../infra/deploy/project-state.ts'
import type { Command, Io } from './command.ts'
import { ACTOR_HEADER, runInHost } from './remote.ts'

/** What {@link controlAdmin} needs. */
export interface ControlAdminOptions {
  project: Project
  /** The host's state folder override. */
  state: string | undefined
  /** The commands the host runs for the CLI, by name. */
  commands: Readonly<Record<string, Command>>
  /** Called before a command runs (opens the store on first use when the host started without one). */
  prepare?: () => Promise<void>
  /** Called after a command ran (the host's routing catches up with what it changed at once). */
  after?: () => Promise<void>
}

/**
 * `POST /_sovra/control/run`: the host runs a control-plane command (deploy, rollout, approve, approvals, audit,
 * keys, versions) on the state it holds, for the CLI, and streams its output as JSON lines (`{"out"}`, `{"err"}`,
 * then `{"exit"}` or `{"error"}`). Who may: with `[auth] jwks`, a verified token of a member of `[auth] operators`
 * (the actor is its subject, verified); without, only a loopback caller (the actor is the name it claims, as the OS
 * user at a terminal would). A canary or an approval then needs no restart and no second process on the state.
 * @param options the project, the state override and the commands
 */
export function controlAdmin(options: ControlAdminOptions): AdminApp {
  const { project, commands } = options
  const app = new Hono<AdminEnv>()
  const authenticate = createAuthenticator(project.auth, project.tiers.names)
  app.post('/control/run', principalMiddleware(authenticate), async (c) => {
    const who = controlActor(project, c.get('auth').token === true, c.get('principal'), {
      remote: c.env?.incoming?.socket.remoteAddress,
      claimed: c.req.header(ACTOR_HEADER),
    })
    const body = (await c.req.json().catch(() => undefined)) as
      { command?: unknown; args?: unknown; env?: unknown } | undefined
    const name = body?.command
    if (typeof name !== 'string' || commands[name] === undefined)
      throw new SovraError(
        'ERR_BAD_REQUEST',
        `command: expected one of ${Object.keys(commands).join(', ')}, received ${JSON.stringify(name)}`,
      )
    const args = body?.args
    if (!Array.isArray(args) || !args.every((a) => typeof a === 'string'))
      throw new SovraError('ERR_BAD_REQUEST', `args: expected an array of strings, received ${JSON.stringify(args)}`)
    const env = Object.fromEntries(
      Object.entries((body?.env ?? {}) as Record<string, unknown>).filter(
        (e): e is [string, string] => /^SOVRA_OW_/.test(e[0]) && typeof e[1] === 'string',
      ),
    )
    const command = commands[name] as Command
    const local = [
      '--config',
      project.file,
      ...(project.env === undefined ? [] : ['--env', project.env]),
      ...(options.state === undefined ? [] : ['--state', options.state]),
    ]
    const encoder = new TextEncoder()
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        const send = (m: unknown): void => controller.enqueue(encoder.encode(`${JSON.stringify(m)}\n`))
        const io: Io = { out: (s) => send({ out: s }), err: (s) => send({ err: s }) }
        const asHelp = (args as string[]).some((a) => a === '--help' || a === '-h')
        const run = async (): Promise<number> => {
          await options.prepare?.()
          const exit = await runInHost(() =>
            withActor(who, () =>
              command.run(asHelp ? (args as string[]) : [...(args as string[]), ...local], io, {
                ...process.env,
                ...env,
              }),
            ),
          )
          await options.after?.()
          return exit
        }
        void run()
          .then(
            (exit) => send({ exit }),
            (error: unknown) =>
              send({
                error:
                  error instanceof SovraError
                    ? { code: error.code, message: error.message }
                    : { code: 'ERR_INTERNAL', message: error instanceof Error ? error.message : String(error) },
              }),
          )
          .finally(() => controller.close())
      },
    })
    return new Response(stream, { headers: { 'content-type': 'application/x-ndjson' } })
  })
  return app
}

/**
 * Who acts through the control endpoint: a verified operator (with `[auth] jwks`), or a loopback caller by the name
 * it claims (without). Anything else is refused before a command runs.
 * @param project the project (its `[auth]`)
 * @param verified whether a bearer token was verified
 * @param principal the caller's principal
 * @param caller the peer's address and the claimed name
 */
export function controlActor(
  project: Project,
  verified: boolean,
  principal: { subject: string; groups: readonly string[] },
  caller: { remote: string | undefined; claimed: string | undefined },
): Actor {
  if (project.auth.jwks !== undefined) {
    if (!verified)
      throw new SovraError(
        'ERR_UNAUTHENTICATED',
        'the control plane needs a verified token on this host ([auth] jwks is set): send Authorization: Bearer <JWT> (the CLI reads SOVRA_TOKEN)',
      )
    if (!principal.groups.some((g) => project.auth.operators.includes(g)))
      throw new SovraError(
        'ERR_FORBIDDEN',
        `${principal.subject} may not use the control plane: operators are members of ${project.auth.operators.join(', ')} ([auth] operators); the token's groups are ${principal.groups.join(', ') || '(none)'}`,
      )
    return { name: principal.subject, via: 'jwt' }
  }
  if (!isLoopback(caller.remote))
    throw new SovraError(
      'ERR_FORBIDDEN',
      `the control plane answers only loopback callers on a host without [auth] jwks; received a call from ${caller.remote ?? '(unknown address)'}`,
    )
  const name = caller.claimed?.trim()
  if (name === undefined || name === '')
    throw new SovraError('ERR_BAD_REQUEST', `name the actor in the ${ACTOR_HEADER} header (the CLI sends the OS user)`)
  return { name, via: 'claimed' }
}
