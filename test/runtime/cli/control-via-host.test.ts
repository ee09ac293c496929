import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { loadConfig } from '../../../runtime/config/load.ts'
import { controlActor } from '../../../runtime/cli/control-app.ts'
import { isSovraError } from '../../../runtime/core/errors.ts'
import { ROOT, runCli, tempProject, waitFor, withFixtures } from '../../helpers.ts'

// No object triggers and nothing deployed: the host starts without its store, and opens it on the first command.
const CONFIG = `
name = "control"
[[functions]]
name = "echo"
main = "fixtures/plain.js"
routes = ["/echo"]
`

/** The child's environment: never a PostgreSQL store, whatever this process has. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env['SOVRA_DATABASE_URL']
  return env
}

describe('the control plane through the running host (deploy, rollout, keys, audit, approvals)', () => {
  let dir: string
  let cfg: string[]
  let url: string
  let child: ChildProcess
  const saved = process.env['SOVRA_DATABASE_URL']

  beforeAll(async () => {
    delete process.env['SOVRA_DATABASE_URL']
    dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
    cfg = ['--config', join(dir, 'wrangler-compat.toml')]
    child = spawn(process.execPath, [join(ROOT, 'bin/sovra.js'), 'start', ...cfg, '--port', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: childEnv(),
    })
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    url = (await waitFor(() => /on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1], 60_000)) as string
  }, 90_000)
  afterAll(async () => {
    if (saved !== undefined) process.env['SOVRA_DATABASE_URL'] = saved
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await new Promise((resolve) => child.once('exit', resolve))
    }
  })

  const as = async (who: string, args: string[]) => {
    process.env['SOVRA_ACTOR'] = who
    return runCli([...args, ...cfg])
  }
  const body = async (): Promise<string> => (await fetch(`${url}/echo`)).text()

  it('keys gen, deploy and a canary run at the host: audited, and routed without a restart', async () => {
    // Before the fix the key file was written, then the command failed on the database lock, unaudited.
    const key = await as('alice', ['keys', 'gen'])
    expect(key.err).toBe('')
    expect(key.code).toBe(0)
    // A signed file and its audit entry, at the host too (the host holds the log).
    writeFileSync(join(dir, 'report.txt'), 'board pack')
    const signed = await as('alice', ['sign', join(dir, 'report.txt')])
    expect(signed.err).toBe('')
    expect(signed.code).toBe(0)
    const deployed = await as('alice', ['deploy', 'echo'])
    expect(deployed.err).toBe('')
    expect(deployed.out).toMatch(/-> stable$/m)
    expect(await body()).toMatch(/^hello from nobody/)
    const file = join(dir, 'fixtures', 'plain.js')
    writeFileSync(file, readFileSync(file, 'utf8').replace('hello from', 'canary from'))
    expect((await as('alice', ['deploy', 'echo', '--canary', '100'])).out).toMatch(/-> canary 100%$/m)
    // The host's routing caught up when the command returned: no restart, no tick to wait for.
    expect(await body()).toMatch(/^canary from nobody/)
    expect((await as('bob', ['rollout', 'rollback', 'echo', '--reason', 'test'])).out).toMatch(/rolled back/)
    expect(await body()).toMatch(/^hello from nobody/)
    const log = await as('alice', ['audit'])
    expect(log.code).toBe(0)
    for (const action of ['key.create', 'artifact.sign', 'version.create', 'deploy', 'canary', 'rollback'])
      expect(log.out).toContain(` ${action} `)
    expect(log.out).toMatch(/ bob +rollback /)
    expect((await as('alice', ['approvals'])).out).toBe('no changes are waiting for approval\n')
  }, 180_000)

  it('a command error at the host comes back as the same error and exit code', async () => {
    const res = await as('alice', ['rollout', 'pin', 'echo', 'echo@nope', '--for', 'tenant=x'])
    expect(res.code).toBe(1)
    expect(res.err).toMatch(/ERR_NOT_FOUND: no version "echo@nope"/)
    const usage = await as('alice', ['deploy', 'nope'])
    expect(usage.code).toBe(2)
    expect(usage.err).toMatch(/unknown function "nope"/)
  }, 60_000)

  it('refuses a caller from another address, and an unauthenticated caller where tokens are required', async () => {
    const { project } = loadConfig({ configPath: join(dir, 'wrangler-compat.toml') })
    const code = (f: () => unknown): string => {
      try {
        f()
        return 'allowed'
      } catch (e) {
        return isSovraError(e) ? e.code : String(e)
      }
    }
    const who = { subject: 'erin', groups: ['sovra-operators'] }
    expect(code(() => controlActor(project, false, who, { remote: '10.1.2.3', claimed: 'erin' }))).toBe('ERR_FORBIDDEN')
    expect(controlActor(project, false, who, { remote: '127.0.0.1', claimed: 'erin' })).toEqual({
      name: 'erin',
      via: 'claimed',
    })
    const withJwt = { ...project, auth: { ...project.auth, jwks: '/jwks.json', operators: ['platform'] } }
    expect(code(() => controlActor(withJwt, false, who, { remote: '127.0.0.1', claimed: 'erin' }))).toBe(
      'ERR_UNAUTHENTICATED',
    )
    expect(code(() => controlActor(withJwt, true, who, { remote: '127.0.0.1', claimed: 'erin' }))).toBe('ERR_FORBIDDEN')
    expect(
      controlActor(withJwt, true, { subject: 'erin', groups: ['platform'] }, { remote: '10.1.2.3', claimed: 'x' }),
    ).toEqual({
      name: 'erin',
      via: 'jwt',
    })
    // Over HTTP: a loopback caller without a name is refused before anything runs.
    const res = await fetch(`${url}/_sovra/control/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'deploy', args: [] }),
    })
    expect(res.status).toBe(400)
    const bad = await fetch(`${url}/_sovra/control/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sovra-actor': 'erin' },
      body: JSON.stringify({ command: 'start', args: [] }),
    })
    expect(bad.status).toBe(400)
    expect(await bad.text()).toMatch(/command: expected one of deploy, rollout, approve, approvals, audit, keys/)
  }, 60_000)
})
