import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { openPglite } from '../../../infra/db/pglite.ts'
import { writeTinyLlama } from '../../../infra/pools/tiny/tiny-gguf.ts'
import { ARTIFACTS_BUCKET } from '../../../infra/registry/registry.ts'
import { FsBucket } from '../../../infra/storage/fs-bucket.ts'
import { parseSince } from '../../../runtime/cli/audit.ts'
import { runCli, tempProject } from '../../helpers.ts'

// A project of pools only (the registry test's shape); the R5 test adds one serving a registry model.
const CONFIG = 'name = "aud"\n[[pools]]\nname = "tiny"\nengine = "llama"\nmodel = "tiny:llama"\n'
const dir = tempProject({ 'wrangler-compat.toml': CONFIG })
const state = join(dir, 'state')
const cfg = ['--config', join(dir, 'wrangler-compat.toml'), '--state', state]
// The pool test has its own state: the R4 test leaves checkpoints of a chain it then empties.
const poolState = join(dir, 'pool-state')
const poolCfg = ['--config', join(dir, 'wrangler-compat.toml'), '--state', poolState]
process.env['SOVRA_ACTOR'] = 'alice'

/** As the database owner, behind the triggers (the CLI is not running: the embedded store is free). */
async function asOwner(sql: string): Promise<void> {
  const db = await openPglite(join(state, 'db'))
  try {
    await db.exec(`ALTER TABLE sovra_audit DISABLE TRIGGER USER; ${sql}; ALTER TABLE sovra_audit ENABLE TRIGGER USER`)
  } finally {
    await db.close()
  }
}

describe('sovra audit options', () => {
  it('refuses a --since that is no time with ERR_USAGE naming the value and the accepted forms', async () => {
    const res = await runCli(['audit', '--since', 'garbage', ...cfg])
    expect(res.code).toBe(2)
    expect(res.err).toMatch(
      /sovra audit: ERR_USAGE: --since: expected an ISO 8601 date or date-time \(2026-11-01, .*\) or an age \(30m, 24h, 7d\), received "garbage"/,
    )
    expect(res.err).not.toMatch(/timestamp|syntax/i)
    expect((await runCli(['audit', '--since', '2026-02-30', ...cfg])).err).toMatch(/received "2026-02-30"/)
    for (const ok of ['2026-11-01', '7d']) expect((await runCli(['audit', '--since', ok, ...cfg])).code, ok).toBe(0)
    const now = Date.parse('2026-11-08T12:00:00Z')
    expect(parseSince('2026-11-01', now)).toBe('2026-11-01T00:00:00.000Z')
    expect(parseSince('2026-11-01T09:30', now)).toBe('2026-11-01T09:30:00.000Z')
    expect(parseSince('2026-11-01 09:30:00+01:00', now)).toBe('2026-11-01T08:30:00.000Z')
    expect(parseSince('24h', now)).toBe('2026-11-07T12:00:00.000Z')
    for (const bad of ['2026-11-01T24:00', '2026-13-01', '1699999999', 'yesterday', ''])
      expect(() => parseSince(bad, now), bad).toThrow(`received ${JSON.stringify(bad)}`)
  }, 60_000)

  it('refuses a bad --limit, options verify does not take, and an unknown subcommand', async () => {
    for (const bad of ['abc', '0', '-1', '1.5', '1000001']) {
      const res = await runCli(['audit', '--limit', bad, ...cfg])
      expect(res.code, bad).toBe(2)
      expect(res.err).toContain(`--limit: expected a whole number of entries from 1 to 100000, received "${bad}"`)
    }
    const verify = await runCli(['audit', 'verify', '--since', '7d', ...cfg])
    expect(verify.code).toBe(2)
    expect(verify.err).toMatch(/sovra audit verify takes no --since: it covers the whole chain/)
    const unknown = await runCli(['audit', 'verfy', ...cfg])
    expect(unknown.code).toBe(2)
    expect(unknown.err).toMatch(/unknown subcommand "verfy"; valid: verify, checkpoint/)
  }, 60_000)
})

describe('sovra audit verify against signed checkpoints (R4)', () => {
  it('signs the head on security entries and names a deleted tail, then an emptied table', async () => {
    for (const name of ['k1', 'k2', 'k3', 'k4'])
      expect((await runCli(['keys', 'gen', '--name', name, ...cfg])).code).toBe(0)
    const intact = await runCli(['audit', 'verify', ...cfg])
    expect(intact.code).toBe(0)
    expect(intact.out).toMatch(
      /^yes: the audit chain is intact \(4 entries\); 4 signed checkpoints agree, the latest covers 4 entries \(signed at \S+ by host audit key, [0-9a-f]{16}\)$/m,
    )
    const signed = await runCli(['audit', 'checkpoint', ...cfg])
    expect(signed.code).toBe(0)
    expect(signed.out).toMatch(
      /^signed: the checkpoint of entry 4 \(id 4, hash [0-9a-f]{64}\) by host audit key \([0-9a-f]{16}\), stored as audit\/checkpoints\/000000000004\.json\npublic key \(pin it with \[\[trust\]\] kinds = \["audit"\] where this chain is verified\): [A-Za-z0-9+/]{43}=$/m,
    )
    await asOwner('DELETE FROM sovra_audit WHERE id >= 3')
    const tail = await runCli(['audit', 'verify', ...cfg])
    expect(tail.code).toBe(1)
    expect(tail.out).toMatch(
      /^no: the chain has 2 entries but the checkpoint of entry 4 signed at \S+ by host audit key \([0-9a-f]{16}\) covers 4 entries with head hash [0-9a-f]{12}\.\.\.: entries 3-4 were deleted$/m,
    )
    const refused = await runCli(['audit', 'checkpoint', ...cfg])
    expect(refused.code).toBe(1)
    expect(refused.err).toMatch(/refused: a checkpoint would vouch for a chain that does not verify/)
    await asOwner('TRUNCATE sovra_audit')
    const empty = await runCli(['audit', 'verify', ...cfg])
    expect(empty.code).toBe(1)
    expect(empty.out).toMatch(
      /^no: the chain has 0 entries but .*: all 4 entries were deleted \(the table was emptied/m,
    )
    const json = JSON.parse((await runCli(['audit', 'verify', '--json', ...cfg])).out) as Record<string, unknown>
    expect(json).toMatchObject({ ok: false, entries: 0, checkpoints: 0 })
  }, 120_000)
})

describe('sovra pool serve of a tampered registry model (R5)', () => {
  it('is refused with ERR_SIGNATURE and the refusal is an audit entry, as models verify records it', async () => {
    expect((await runCli(['keys', 'gen', '--name', 'ml', '--kinds', 'model', ...poolCfg])).code).toBe(0)
    await writeTinyLlama(join(dir, 'qa.gguf'))
    const ref = (
      await runCli(['models', 'push', join(dir, 'qa.gguf'), '--name', 'qa', '--key', 'ml', ...poolCfg])
    ).out.trim()
    expect(ref).toMatch(/^registry:qa@sha256:[0-9a-f]{64}$/)
    const sha = ref.split(':').at(-1) as string
    const bytes = readFileSync(join(dir, 'qa.gguf'))
    bytes[100] = (bytes[100] as number) ^ 0xff
    await new FsBucket(ARTIFACTS_BUCKET, join(poolState, 'buckets')).put(`blobs/sha256/${sha}`, bytes)
    writeFileSync(
      join(dir, 'wrangler-compat.toml'),
      `${CONFIG}[[pools]]\nname = "qa"\nengine = "llama"\nmodel = "${ref}"\nthreads = 1\n`,
    )
    const serve = await runCli(['pool', 'serve', '--pool', 'qa', '--port', '0', ...poolCfg])
    expect(serve.code).toBe(1)
    expect(serve.err).toMatch(/ERR_SIGNATURE: model registry:qa@sha256:[0-9a-f]{64}: qa\.gguf was tampered with/)
    const entries = JSON.parse((await runCli(['audit', '--json', ...poolCfg])).out) as Array<Record<string, unknown>>
    expect(entries.at(-1)).toMatchObject({
      actor: 'alice',
      action: 'signature.refused',
      subject: ref,
      reason: expect.stringMatching(/was tampered with: expected sha256/),
      details: { pool: 'qa', replica: expect.stringMatching(/^qa-\d+$/) },
    })
  }, 120_000)
})
