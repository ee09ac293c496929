import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { migrate } from '../../../infra/db/migrate.ts'
import { openPg } from '../../../infra/db/pg.ts'
import { openPglite } from '../../../infra/db/pglite.ts'
import { auditLog } from '../../../infra/deploy/audit.ts'
import { checkCanary, DEFAULT_ROLLOUT, judgeCanary } from '../../../infra/deploy/canary-check.ts'
import { controlPlane, type ControlPlane } from '../../../infra/deploy/control-plane.ts'
import { isSovraError } from '../../../runtime/core/errors.ts'
import { signApproval } from '../../../infra/deploy/approvals.ts'
import { generateKey } from '../../../infra/registry/keys.ts'
import { trustPolicy } from '../../../infra/registry/trust.ts'
import type { Db } from '../../../runtime/core/ports.ts'
import { selectVersion } from '../../../triggers/http/version-select.ts'
import { createTestSchema } from '../../support/pg.ts'

const sha = (c: string): string => c.repeat(64)

/** The message of a refusal (an approval or signature error), or what happened instead. */
async function refuse(p: Promise<unknown>): Promise<string> {
  const e = await p.catch((x: unknown) => x)
  return isSovraError(e) && (e.code === 'ERR_APPROVAL' || e.code === 'ERR_SIGNATURE')
    ? e.message
    : `not refused: ${String(e)}`
}

function suite(name: string, open: () => Promise<{ db: Db; done(): Promise<void> }>): void {
  describe(`control plane (${name})`, () => {
    let db: Db
    let done: () => Promise<void>
    let cp: ControlPlane
    const v = async (fn: string, c: string, risk: 'low' | 'medium' | 'high' = 'low'): Promise<string> =>
      (
        await cp.recordVersion({
          function: fn,
          bundleSha256: sha(c),
          configSha256: sha('0'),
          manifest: { signed: c },
          risk,
          createdBy: 'alice',
        })
      ).id
    beforeAll(async () => {
      ;({ db, done } = await open())
      await migrate(db)
      cp = controlPlane(db)
    }, 60_000)
    afterAll(async () => {
      await done?.()
    })

    it('versions are immutable: recording twice is one version, and the database refuses edits', async () => {
      const a = await v('ask', 'a')
      expect(await v('ask', 'a')).toBe(a)
      expect(a).toBe(`ask@${'a'.repeat(12)}-00000000`)
      await expect(db.query("UPDATE sovra_versions SET created_by = 'mallory'")).rejects.toThrow(
        /immutable: UPDATE refused/,
      )
    })

    it('first deploy is stable; a low-risk canary at 10% routes 10% +- 2% of 10,000 request ids; pins override it', async () => {
      const v1 = `ask@${'a'.repeat(12)}-00000000`
      expect(
        (
          await cp.requestChange({
            function: 'ask',
            version: v1,
            action: 'canary',
            weight: 10,
            risk: 'low',
            author: 'alice',
          })
        ).status,
      ).toBe('applied')
      expect((await cp.routing('ask'))?.stable).toBe(v1)
      const v2 = await v('ask', 'b')
      await cp.requestChange({
        function: 'ask',
        version: v2,
        action: 'canary',
        weight: 10,
        risk: 'low',
        author: 'alice',
      })
      const state = (await cp.routing('ask'))!
      expect(state.canary).toEqual({ version: v2, weight: 10 })
      let canary = 0
      for (let i = 0; i < 10_000; i++) if (selectVersion(state, { requestId: `id-${i}` }).version === v2) canary++
      expect(Math.abs(canary - 1000)).toBeLessThanOrEqual(200)
      await cp.pin('ask', 'tenant', 'legal', v1, 'alice')
      const pinned = (await cp.routing('ask'))!
      for (let i = 0; i < 500; i++)
        expect(selectVersion(pinned, { requestId: `id-${i}`, attributes: { tenant: 'legal' } }).version).toBe(v1)
      await cp.unpin('ask', 'tenant', 'legal', 'alice')
      expect((await cp.routing('ask'))?.pins).toEqual([])
    })

    it('rolls a canary back automatically when its error rate crosses the threshold, recording why', async () => {
      const stats = async (version: string): Promise<{ requests: number; errors: number; p95Ms: number }> =>
        version.includes('bbbb') ? { requests: 400, errors: 20, p95Ms: 120 } : { requests: 3600, errors: 7, p95Ms: 110 }
      const verdict = await checkCanary(cp, 'ask', DEFAULT_ROLLOUT, stats)
      expect(verdict?.verdict).toBe('rollback')
      expect(verdict?.reason).toMatch(
        /canary error rate 5\.00% over max_error_rate 2\.00% \(stable 0\.19%\) on 400 requests/,
      )
      expect((await cp.routing('ask'))?.canary).toBeUndefined()
      const last = (await auditLog(db).list()).at(-1)
      expect(last).toMatchObject({
        actor: 'rollout-controller',
        action: 'rollback',
        subject: 'ask',
        before: expect.stringContaining('bbbb'),
        reason: verdict?.reason,
      })
    })

    it('a high-risk change needs two distinct approvers who are not the author, and is not routed before', async () => {
      const v3 = await v('report', 'c', 'high')
      await cp.requestChange({
        function: 'report',
        version: await v('report', 'd', 'high'),
        action: 'promote',
        risk: 'low',
        author: 'alice',
      })
      const change = await cp.requestChange({
        function: 'report',
        version: v3,
        action: 'canary',
        weight: 50,
        risk: 'high',
        author: 'alice',
      })
      expect(change).toMatchObject({ status: 'pending', required: 2 })
      expect((await cp.routing('report'))?.canary).toBeUndefined()
      const jwt = (name: string) => ({ name, via: 'jwt' as const })
      expect(await refuse(cp.approve(change.id, 'bob'))).toMatch(/high risk: an approval must be signed .* claimed/)
      expect(await refuse(cp.approve(change.id, jwt('alice')))).toMatch(/is the author .* cannot approve/)
      expect((await cp.approve(change.id, jwt('bob'))).status).toBe('pending')
      expect(await refuse(cp.approve(change.id, jwt('bob')))).toMatch(/already approved .* needs 2 distinct approvers/)
      expect((await cp.routing('report'))?.canary).toBeUndefined()
      expect((await cp.approve(change.id, jwt('carol'))).status).toBe('applied')
      expect((await cp.routing('report'))?.canary).toEqual({ version: v3, weight: 50 })
      expect(await cp.pending('report')).toEqual([])
    })

    it('a signed approval counts only for the change and digests it names, by a key trusted for approve', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sovra-approve-'))
      const erin = generateKey(dir, 'erin')
      const frank = generateKey(dir, 'frank')
      const trust = trustPolicy([
        { name: 'erin', public_key: erin.publicKey, kinds: ['approve'] },
        { name: 'frank', public_key: frank.publicKey, kinds: ['bundle'] },
      ])
      const ask = async (c: string) =>
        cp.requestChange({
          function: 'signed',
          version: await v('signed', c, 'medium'),
          action: 'promote',
          risk: 'medium',
          author: 'alice',
        })
      await cp.requestChange({
        function: 'signed',
        version: await v('signed', '1'),
        action: 'promote',
        risk: 'low',
        author: 'alice',
      })
      const one = await ask('2')
      const two = await ask('3')
      const subject = async (id: string) => cp.approvalSubject(id)
      // Signed for another change: refused, naming the fields that differ.
      expect(await refuse(cp.approveSigned(one.id, signApproval(await subject(two.id), erin), trust))).toMatch(
        /does not match the change in change .*version .*bundle_sha256/,
      )
      // A key trusted for bundles only is not an approver.
      expect(await refuse(cp.approveSigned(one.id, signApproval(await subject(one.id), frank), trust))).toMatch(
        /signed by unknown key/,
      )
      // A statement edited after signing does not verify.
      const forged = signApproval(await subject(one.id), erin)
      const body = JSON.parse(Buffer.from(forged.payload, 'base64').toString('utf8')) as Record<string, unknown>
      forged.payload = Buffer.from(JSON.stringify({ ...body, at: '2020-01-01T00:00:00.000Z' })).toString('base64')
      expect(await refuse(cp.approveSigned(one.id, forged, trust))).toMatch(/does not verify/)
      const ok = await cp.approveSigned(one.id, signApproval(await subject(one.id), erin), trust)
      expect(ok).toMatchObject({ status: 'applied', approvers: ['erin'] })
      const row = (
        await db.query<{ verified_by: string; key_id: string; statement: unknown }>(
          'SELECT verified_by, key_id, statement FROM sovra_approvals WHERE change_id = $1',
          [one.id],
        )
      ).rows[0]
      expect(row).toMatchObject({ verified_by: 'signature', key_id: erin.keyid })
      expect(JSON.stringify(row?.statement)).toContain(one.id)
      expect((await cp.changeFor(two.version, 'local'))?.status).toBe('pending')
    })

    it('promote makes the canary stable; rollback returns to the previous stable instantly', async () => {
      const before = (await cp.routing('report'))!
      const noEval = await cp.promote('report', 'alice', 'low', { required: true }).catch((e: unknown) => e)
      expect(isSovraError(noEval) && noEval.message).toMatch(/requires a passing eval run to promote/)
      expect((await cp.routing('report'))?.canary).toEqual(before.canary)
      await cp.promote('report', 'alice', 'low', { required: true, runId: 'eval-2026-11-27-01' })
      expect((await auditLog(db).list()).find((e) => e.action === 'eval.attach')?.details).toEqual({
        eval_run: 'eval-2026-11-27-01',
      })
      const after = (await cp.routing('report'))!
      expect(after.stable).toBe(before.canary?.version)
      expect(await cp.rollback('report', 'bob', 'incident 42')).toEqual({ from: after.stable, to: before.stable })
      expect((await cp.routing('report'))?.stable).toBe(before.stable)
      expect(await auditLog(db).verify()).toMatchObject({ ok: true })
    })
  })
}

describe('judgeCanary', () => {
  it('waits for min_requests and flags a slow canary', () => {
    expect(
      judgeCanary(DEFAULT_ROLLOUT, { requests: 1000, errors: 0, p95Ms: 100 }, { requests: 50, errors: 10, p95Ms: 100 })
        .verdict,
    ).toBe('insufficient')
    expect(
      judgeCanary(DEFAULT_ROLLOUT, { requests: 1000, errors: 0, p95Ms: 100 }, { requests: 300, errors: 1, p95Ms: 900 }),
    ).toMatchObject({ verdict: 'rollback', reason: expect.stringMatching(/p95 900 ms over max_p95_ms 800/) })
    expect(
      judgeCanary(DEFAULT_ROLLOUT, { requests: 1000, errors: 50, p95Ms: 100 }, { requests: 300, errors: 9, p95Ms: 100 })
        .verdict,
    ).toBe('healthy')
  })
})

suite('PGlite', async () => {
  const db = await openPglite()
  return { db, done: () => db.close() }
})
suite('PostgreSQL server', async () => {
  const schema = await createTestSchema('cp')
  const db = await openPg(schema.url)
  return {
    db,
    done: async () => {
      await db.close()
      await schema.drop()
    },
  }
})
