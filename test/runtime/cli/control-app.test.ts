import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Hono } from 'hono'
import { beforeAll, describe, expect, it } from 'vitest'

import { loadConfig } from '../../../runtime/config/load.ts'
import type { Project } from '../../../runtime/config/resolve.ts'
import { controlAdmin } from '../../../runtime/cli/control-app.ts'
import type { Command } from '../../../runtime/cli/command.ts'
import { errorToResponse, SovraError } from '../../../runtime/core/errors.ts'
import type { AdminEnv } from '../../../runtime/hosts/app/host-app.ts'
import { currentActor } from '../../../infra/deploy/project-state.ts'
import { createTestIssuer, type TestIssuer } from '../../support/jwt.ts'
import { tempProject } from '../../helpers.ts'

/** A command that prints who runs it and the arguments it got, or fails as asked. */
const whoami: Command = {
  usage: 'whoami',
  async run(args, io) {
    if (args.includes('--fail')) throw new SovraError('ERR_NOT_FOUND', 'no such thing')
    io.out(JSON.stringify(currentActor()))
    io.out(JSON.stringify(args))
    return 3
  },
}

describe('/_sovra/control/run with [auth] jwks: verified operators only, the token subject as the actor', () => {
  let issuer: TestIssuer
  let project: Project
  let app: Hono<AdminEnv>
  beforeAll(async () => {
    issuer = await createTestIssuer()
    const dir = tempProject({
      'wrangler-compat.toml': `
name = "ctl"
[[functions]]
name = "echo"
main = "echo.js"
routes = ["/echo"]
[auth]
jwks = "jwks.json"
issuer = "${issuer.issuer}"
audience = "${issuer.audience}"
operators = ["platform"]
`,
      'echo.js': 'export default { fetch: () => new Response("hi") }',
    })
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify(issuer.jwks))
    project = loadConfig({ configPath: join(dir, 'wrangler-compat.toml') }).project
    // Mounted as the host mounts it: the admin API's one error handler maps errors to their status.
    app = new Hono<AdminEnv>()
      .route('/', controlAdmin({ project, state: undefined, commands: { whoami } }))
      .onError((error) => errorToResponse(error))
  })

  const call = async (token: string | undefined, body: unknown) =>
    app.request('/control/run', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-sovra-actor': 'mallory',
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify(body),
    })

  it('runs the command as the token subject (verified), with the host project options, and streams its exit', async () => {
    const token = await issuer.sign({ sub: 'erin', groups: ['platform'] })
    const res = await call(token, { command: 'whoami', args: ['x'] })
    expect(res.status).toBe(200)
    const lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(JSON.parse(lines[0]?.['out'] as string)).toEqual({ name: 'erin', via: 'jwt' })
    expect(JSON.parse(lines[1]?.['out'] as string)).toEqual(['x', '--config', project.file])
    expect(lines[2]).toEqual({ exit: 3 })
    // An error thrown by the command comes back as its code and message.
    const failed = await call(token, { command: 'whoami', args: ['--fail'] })
    expect(await failed.text()).toContain('{"error":{"code":"ERR_NOT_FOUND","message":"no such thing"}}')
  })

  it('refuses no token, a forged token, and a verified caller outside [auth] operators, before anything runs', async () => {
    const status = async (token: string | undefined) => (await call(token, { command: 'whoami', args: [] })).status
    expect(await status(undefined)).toBe(401)
    expect(await status(await issuer.sign({ sub: 'erin', groups: ['platform'] }, { key: issuer.otherKey }))).toBe(401)
    const outsider = await call(await issuer.sign({ sub: 'dave', groups: ['staff'] }), { command: 'whoami', args: [] })
    expect(outsider.status).toBe(403)
    expect(await outsider.text()).toMatch(/dave may not use the control plane: operators are members of platform/)
  })
})
