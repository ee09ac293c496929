import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { FsBucket } from '../../../infra/storage/fs-bucket.ts'
import { ROOT, runCli, tempProject, withFixtures } from '../../helpers.ts'

const dir = withFixtures(
  tempProject({
    'wrangler-compat.toml': `
name = "rollouts"
[[functions]]
name = "echo"
main = "fixtures/plain.js"
routes = ["/echo"]

[[functions]]
name = "report"
main = "${join(ROOT, 'functions/echo/index.ts')}"
routes = ["/report"]
risk = "high"
`,
  }),
)
const cfg = ['--config', join(dir, 'wrangler-compat.toml'), '--state', join(dir, 'state')]
const as = async (who: string, args: string[]): Promise<Awaited<ReturnType<typeof runCli>>> => {
  process.env['SOVRA_ACTOR'] = who
  return runCli([...args, ...cfg])
}
const bump = (file: string, from: string, to: string): void =>
  writeFileSync(file, readFileSync(file, 'utf8').replace(from, to))

describe('sovra deploy (local), rollout and approve', () => {
  it('refuses to deploy without a signing key', async () => {
    const res = await as('alice', ['deploy', 'echo'])
    expect(res.code).toBe(2)
    expect(res.err).toMatch(/no signing key "default"/)
    const unknown = await as('alice', ['deploy', 'echo', '--target', 'nomad'])
    expect(unknown.code).toBe(2)
    expect(unknown.err).toMatch(/--target: unknown target "nomad"; valid: local, openwhisk/)
  }, 60_000)

  it('deploys a signed, verified version as stable, then a canary at 10%, and rolls it back instantly', async () => {
    expect((await as('alice', ['keys', 'gen'])).code).toBe(0)
    // --plan prints what would change and records nothing.
    const planned = await as('alice', ['deploy', 'echo', '--plan'])
    expect(planned.out).toMatch(/^plan: echo echo@[0-9a-f]{12}-[0-9a-f]{8} -> stable$/m)
    expect((await as('alice', ['rollout', 'status', 'echo'])).out).toMatch(/not deployed/)
    const first = await as('alice', ['deploy', 'echo'])
    expect(first.out).toMatch(
      /^echo: echo@[0-9a-f]{12}-[0-9a-f]{8} \(bundle sha256:[0-9a-f]{12}\.\.\., signed by default\) -> stable$/m,
    )
    expect((await as('alice', ['deploy', 'echo'])).out).toMatch(/is already stable/)
    bump(join(dir, 'fixtures', 'plain.js'), 'hello from', 'hi from')
    const canary = await as('alice', ['deploy', 'echo', '--canary', '10'])
    expect(canary.out).toMatch(/-> canary 10%$/m)
    // Asking again for the canary that holds opens no new change (issue 11).
    expect((await as('alice', ['deploy', 'echo', '--canary', '10'])).out).toMatch(/is already the canary at 10%$/m)
    const status = await as('alice', ['rollout', 'status', 'echo'])
    expect(status.out).toMatch(/^echo: stable echo@\S+, canary echo@\S+ at 10%$/m)
    const rb = await as('bob', ['rollout', 'rollback', 'echo', '--reason', 'errors in canary'])
    expect(rb.out).toMatch(/rolled back from echo@\S+ to echo@\S+/)
    expect((await as('alice', ['rollout', 'status', 'echo'])).out).not.toMatch(/canary/)
  }, 120_000)

  it('a high-risk canary waits for two approvers other than the author, each signing with their own key', async () => {
    for (const who of ['bob', 'carol', 'alice'])
      expect((await as(who, ['keys', 'gen', '--name', who, '--kinds', 'approve'])).code).toBe(0)
    // Even a first deploy of a high-risk function waits for approvals.
    const first = await as('alice', ['deploy', 'report'])
    const firstId = /pending approval (chg-[0-9a-f]+)/.exec(first.out)?.[1] as string
    expect((await as('alice', ['rollout', 'status', 'report'])).out).toMatch(/not deployed/)
    expect((await as('dave', ['approvals'])).out).toMatch(
      new RegExp(
        `^${firstId}  report  promote to stable -> report@\\S+ \\(local\\)  risk high: 0/2 approvals; asked by alice$`,
        'm',
      ),
    )
    // A name alone (SOVRA_ACTOR, the OS user) is not an identity for a high-risk approval.
    const claimed = await as('bob', ['approve', firstId])
    expect(claimed.code).toBe(1)
    expect(claimed.err).toMatch(/ERR_APPROVAL: .*high risk: an approval must be signed .* "bob" is only a claimed name/)
    expect((await as('bob', ['approve', firstId, '--key', 'bob'])).out).toMatch(/approved by bob \(1\/2\)/)
    expect((await as('carol', ['approve', firstId, '--key', 'carol'])).out).toMatch(/-> stable/)
    // A config change makes a new version too (the config digest is part of the version).
    bump(join(dir, 'wrangler-compat.toml'), 'risk = "high"', 'risk = "high"\nvars = { BUILD = "2" }')
    const pending = await as('alice', ['deploy', 'report', '--canary', '50'])
    const id = /pending approval (chg-[0-9a-f]+) \(risk high: 2 approvals from others than alice/.exec(pending.out)?.[1]
    expect(id).toBeDefined()
    // Asking again while it waits names the waiting change instead of opening another.
    expect((await as('alice', ['deploy', 'report', '--canary', '50'])).out).toContain(
      `already waits for approval in ${id}`,
    )
    expect((await as('alice', ['rollout', 'status', 'report'])).out.match(/pending chg-/g)?.length).toBe(1)
    // The author's own key names the author, whatever SOVRA_ACTOR says.
    const self = await as('mallory', ['approve', id as string, '--key', 'alice'])
    expect(self.code).toBe(1)
    expect(self.err).toMatch(/ERR_APPROVAL: alice is the author/)
    // An applied change takes no more approvals.
    const other = await as('bob', ['approve', firstId, '--key', 'bob'])
    expect(other.err).toMatch(/is applied, not pending/)
    expect((await as('bob', ['approve', id as string, '--key', 'bob'])).out).toMatch(
      /approved by bob \(1\/2\) -> pending approval/,
    )
    expect((await as('bob', ['approve', id as string, '--key', 'bob'])).err).toMatch(/bob already approved/)
    expect((await as('alice', ['rollout', 'status', 'report'])).out).toMatch(
      /pending chg-[0-9a-f]+: canary report@\S+ by alice, 1\/2 approvals/,
    )
    expect((await as('carol', ['approve', id as string, '--key', 'carol'])).out).toMatch(
      /approved by carol \(2\/2\) -> canary 50%/,
    )
    expect((await as('alice', ['rollout', 'status', 'report'])).out).toMatch(/canary report@\S+ at 50%/)
    expect((await as('dave', ['approvals'])).out).toBe('no changes are waiting for approval\n')
    // Re-running the deploy once it was approved and applied opens no new pending change (issue 11).
    expect((await as('alice', ['deploy', 'report', '--canary', '50'])).out).toMatch(/is already the canary at 50%$/m)
    expect((await as('alice', ['rollout', 'status', 'report'])).out).not.toMatch(/pending/)
    // The audit log says how each approval was established.
    const entries = JSON.parse((await as('alice', ['audit', '--json'])).out) as Array<{
      action: string
      details?: Record<string, unknown>
    }>
    const approvals = entries.filter((e) => e.action === 'approve')
    expect(approvals.length).toBe(4)
    for (const e of approvals) expect(e.details).toMatchObject({ verified_by: 'signature', key_id: expect.any(String) })
  }, 180_000)

  it('pins a caller group to a version', async () => {
    const status = (await as('alice', ['rollout', 'status', 'echo'])).out
    const stable = /stable (echo@\S+?)[,\s]/.exec(status)?.[1] as string
    expect((await as('alice', ['rollout', 'pin', 'echo', stable, '--for', 'tenant=legal'])).out).toContain(
      `tenant=legal pinned to ${stable}`,
    )
    expect((await as('alice', ['rollout', 'status', 'echo'])).out).toContain(`pin tenant=legal -> ${stable}`)
    expect((await as('alice', ['rollout', 'pin', 'echo', 'echo@nope', '--for', 'tenant=x'])).err).toMatch(
      /no version "echo@nope"/,
    )
  }, 60_000)

  it('refuses a tampered bundle in the registry, and the audit chain records it all', async () => {
    const bucket = new FsBucket('sovra-artifacts', join(dir, 'state', 'buckets'))
    const listed = await bucket.list({ prefix: 'manifests/bundle/echo/' })
    const env = JSON.parse(await (await bucket.get(listed.objects[0]!.key))!.text()) as { payload: string }
    const sha = (
      JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as { subjects: Array<{ sha256: string }> }
    ).subjects[0]!.sha256
    await bucket.put(`blobs/sha256/${sha}`, 'export default { fetch() { return new Response("pwned") } }')
    const v = await as('alice', ['verify', `registry:echo@sha256:${sha}`, '--kind', 'bundle'])
    expect(v.code).toBe(1)
    expect(v.err).toMatch(/was tampered with: expected sha256/)
    const log = (await as('alice', ['audit'])).out
    for (const action of [
      'key.create',
      'version.create',
      'deploy',
      'canary',
      'rollback',
      'change.request',
      'approve',
      'pin',
      'signature.refused',
    ])
      expect(log).toContain(` ${action} `)
    expect((await as('alice', ['audit', 'verify'])).out).toMatch(/^yes/)
  }, 60_000)
})
