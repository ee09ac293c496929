import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { VersionHistoryEntry } from '../../../infra/deploy/version-history.ts'
import { HEAVY_HOOK_MS, ROOT, runCli, tempProject, waitFor, withFixtures } from '../../helpers.ts'

const CONFIG = `
name = "history"
[[functions]]
name = "echo"
main = "fixtures/plain.js"
routes = ["/echo"]

[[functions]]
name = "report"
main = "fixtures/plain.js"
routes = ["/report"]
risk = "medium"
`
const bump = (file: string, from: string, to: string): void =>
  writeFileSync(file, readFileSync(file, 'utf8').replace(from, to))
const ISO = '\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z'

describe('sovra versions (on the state folder)', () => {
  const dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
  const cfg = ['--config', join(dir, 'wrangler-compat.toml'), '--state', join(dir, 'state')]
  const as = async (who: string, args: string[]): Promise<Awaited<ReturnType<typeof runCli>>> => {
    process.env['SOVRA_ACTOR'] = who
    return runCli([...args, ...cfg])
  }
  const json = async (fn: string): Promise<VersionHistoryEntry[]> => {
    const res = await as('dave', ['versions', fn, '--json'])
    expect(res.err).toBe('')
    return JSON.parse(res.out) as VersionHistoryEntry[]
  }

  it('says when a function has no versions yet, and refuses a name that is no function', async () => {
    expect((await as('alice', ['keys', 'gen'])).code).toBe(0)
    const none = await as('alice', ['versions', 'echo'])
    expect(none).toEqual({ code: 0, out: 'echo: no versions yet; deploy one with: sovra deploy echo\n', err: '' })
    expect((await as('alice', ['versions', 'echo', '--json'])).out).toBe('[]\n')
    const typo = await as('alice', ['versions', 'ehco'])
    expect(typo.code).toBe(2)
    expect(typo.err).toMatch(
      /ERR_USAGE: unknown function "ehco": not in the config and never deployed; functions: echo, report/,
    )
    expect((await as('alice', ['versions'])).code).toBe(2)
  }, 60_000)

  it('lists two versions deployed with a canary, newest first, with states, digests and who deployed them', async () => {
    expect((await as('alice', ['deploy', 'echo'])).code).toBe(0)
    bump(join(dir, 'fixtures', 'plain.js'), 'hello from', 'v2 from')
    expect((await as('carol', ['deploy', 'echo', '--canary', '10'])).out).toMatch(/-> canary 10%$/m)
    const res = await as('dave', ['versions', 'echo'])
    expect(res.code).toBe(0)
    const block = (who: string, state: string): string =>
      [
        `echo@[0-9a-f]{12}-[0-9a-f]{8}  ${state}`,
        '  bundle sha256:[0-9a-f]{64}',
        '  config sha256:[0-9a-f]{64}',
        `  deployed by ${who} at ${ISO} \\(risk low\\); no approvals`,
      ].join('\n')
    expect(res.out).toMatch(new RegExp(`^${block('carol', 'canary 10%')}\n${block('alice', 'stable')}\n$`))

    const list = await json('echo')
    expect(list).toHaveLength(2)
    const [canary, stable] = list as [VersionHistoryEntry, VersionHistoryEntry]
    expect(canary).toEqual({
      id: `echo@${canary.bundleSha256.slice(0, 12)}-${canary.configSha256.slice(0, 8)}`,
      function: 'echo',
      bundleSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      configSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      risk: 'low',
      createdBy: 'carol',
      createdAt: expect.stringMatching(new RegExp(`^${ISO}$`)),
      state: ['canary 10%'],
      approvals: [],
    })
    expect(stable).toMatchObject({ createdBy: 'alice', state: ['stable'], approvals: [] })
    // Same config, new code: the config digest is the same, the bundle's is not.
    expect(stable.configSha256).toBe(canary.configSha256)
    expect(stable.bundleSha256).not.toBe(canary.bundleSha256)
    expect(Date.parse(canary.createdAt)).toBeGreaterThanOrEqual(Date.parse(stable.createdAt))
    expect((await as('dave', ['rollout', 'status', 'echo'])).out).toContain(
      `stable ${stable.id}, canary ${canary.id} at 10%`,
    )
  }, 120_000)

  it('follows pins, promotion (previous) and rollback', async () => {
    const [canary, stable] = (await json('echo')) as [VersionHistoryEntry, VersionHistoryEntry]
    expect((await as('alice', ['rollout', 'pin', 'echo', stable.id, '--for', 'tenant=legal'])).code).toBe(0)
    expect((await json('echo')).map((v) => v.state)).toEqual([['canary 10%'], ['stable', 'pinned for tenant=legal']])
    expect((await as('alice', ['rollout', 'promote', 'echo'])).code).toBe(0)
    expect((await json('echo')).map((v) => [v.id, v.state])).toEqual([
      [canary.id, ['stable']],
      [stable.id, ['previous', 'pinned for tenant=legal']],
    ])
    expect((await as('alice', ['versions', 'echo'])).out).toContain(`${stable.id}  previous, pinned for tenant=legal\n`)
    expect((await as('alice', ['rollout', 'unpin', 'echo', '--for', 'tenant=legal'])).code).toBe(0)
    expect((await as('alice', ['rollout', 'rollback', 'echo', '--reason', 'test'])).code).toBe(0)
    expect((await json('echo')).map((v) => v.state)).toEqual([[], ['stable']])
    expect((await as('alice', ['versions', 'echo'])).out).toMatch(
      new RegExp(`^${canary.id.replace('.', '\\.')}  none$`, 'm'),
    )
  }, 120_000)

  it('shows a version waiting for approval, then who approved it and how', async () => {
    expect((await as('bob', ['keys', 'gen', '--name', 'bob', '--kinds', 'approve'])).code).toBe(0)
    const deployed = await as('alice', ['deploy', 'report'])
    const change = /pending approval (chg-[0-9a-f]+)/.exec(deployed.out)?.[1] as string
    expect(change).toBeDefined()
    const [waiting] = (await json('report')) as [VersionHistoryEntry]
    expect(waiting).toMatchObject({ risk: 'medium', createdBy: 'alice', state: [`pending approval ${change}`] })
    expect((await as('bob', ['approve', change, '--key', 'bob'])).out).toMatch(/-> stable/)
    const [approved] = (await json('report')) as [VersionHistoryEntry]
    expect(approved.state).toEqual(['stable'])
    expect(approved.approvals).toEqual([
      {
        change,
        target: 'local',
        approver: 'bob',
        verifiedBy: 'signature',
        keyId: expect.stringMatching(/\S/),
        at: expect.stringMatching(new RegExp(`^${ISO}$`)),
      },
    ])
    expect((await as('dave', ['versions', 'report'])).out).toContain(
      `deployed by alice at ${approved.createdAt} (risk medium); approved by bob (signature key ${approved.approvals[0]?.keyId}, ${change})`,
    )
  }, 120_000)
})

describe('sovra versions beside a running host', () => {
  const dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
  const cfg = ['--config', join(dir, 'wrangler-compat.toml')]
  let child: ChildProcess
  let url: string
  const saved = process.env['SOVRA_DATABASE_URL']

  beforeAll(async () => {
    // The host holds the embedded database: a CLI that opened it itself would find it locked.
    delete process.env['SOVRA_DATABASE_URL']
    const env = { ...process.env }
    child = spawn(process.execPath, [join(ROOT, 'bin/sovra.js'), 'start', ...cfg, '--port', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env,
    })
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    url = (await waitFor(() => /on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1], 90_000)) as string
  }, HEAVY_HOOK_MS)
  afterAll(async () => {
    if (saved !== undefined) process.env['SOVRA_DATABASE_URL'] = saved
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await new Promise((resolve) => child.once('exit', resolve))
    }
  })

  it('runs at the host, and the version named in each response is one it lists', async () => {
    process.env['SOVRA_ACTOR'] = 'alice'
    expect((await runCli(['keys', 'gen', ...cfg])).code).toBe(0)
    expect((await runCli(['deploy', 'echo', ...cfg])).code).toBe(0)
    bump(join(dir, 'fixtures', 'plain.js'), 'hello from', 'v2 from')
    expect((await runCli(['deploy', 'echo', '--canary', '50', ...cfg])).code).toBe(0)
    const res = await runCli(['versions', 'echo', '--json', ...cfg])
    expect(res.err).toBe('')
    const list = JSON.parse(res.out) as VersionHistoryEntry[]
    expect(list.map((v) => v.state)).toEqual([['canary 50%'], ['stable']])
    const served = new Set<string | null>()
    for (let i = 0; i < 20; i++)
      served.add((await fetch(`${url}/echo`, { headers: { 'x-request-id': `r-${i}` } })).headers.get('x-sovra-version'))
    expect(served).toEqual(new Set(list.map((v) => v.id)))
  }, 180_000)
})
