import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'

import { migrate } from '../../../infra/db/migrate.ts'
import { openPg } from '../../../infra/db/pg.ts'
import { openPglite } from '../../../infra/db/pglite.ts'
import { auditLog, entryHash, GENESIS, type AuditLog, type AuditVerification } from '../../../infra/deploy/audit.ts'
import {
  CHECKPOINT_PREFIX,
  checkpointObject,
  signCheckpoint,
  stateAuditCheckpoints,
} from '../../../infra/deploy/audit-checkpoints.ts'
import { generateKey } from '../../../infra/registry/keys.ts'
import { ARTIFACTS_BUCKET } from '../../../infra/registry/registry.ts'
import { trustPolicy, type TrustEntry } from '../../../infra/registry/trust.ts'
import { FsBucket } from '../../../infra/storage/fs-bucket.ts'
import type { Db } from '../../../runtime/core/ports.ts'
import { createTestSchema } from '../../support/pg.ts'

const OWNER_OFF = 'ALTER TABLE sovra_audit DISABLE TRIGGER USER'
const OWNER_ON = 'ALTER TABLE sovra_audit ENABLE TRIGGER USER'

/** Each field of an entry, and an owner's edit of it (behind the triggers). */
const FIELD_EDITS: Array<[string, string]> = [
  ['actor', "actor = 'mallory'"],
  ['action', "action = 'pin'"],
  ['subject', "subject = 'model:other'"],
  ['before', "before_digest = 'sha256:ff'"],
  ['after', 'after_digest = NULL'],
  ['reason', "reason = 'routine'"],
  ['details', `details = '{"n": 99}'`],
  ['at', "at = at + interval '1 second'"],
]

const problems = (r: AuditVerification): string[] => (r.ok ? [] : r.problems)

function suite(name: string, open: () => Promise<{ db: Db; done(): Promise<void> }>): void {
  describe(`audit log (${name})`, () => {
    let db: Db
    let done: () => Promise<void>
    const dirs: string[] = []
    /** As the table owner: switch the triggers off, run `sql`, switch them on again. */
    const owner = (sql: string): Promise<void> => db.exec(`${OWNER_OFF}; ${sql}; ${OWNER_ON}`)
    /** Appends `n` entries with every field set, none of them an action that is checkpointed at once. */
    const seed = async (audit: AuditLog, n: number): Promise<void> => {
      for (let i = 1; i <= n; i++)
        await audit.append({
          actor: `user${i}`,
          action: 'artifact.push',
          subject: `model:m${i}`,
          before: `sha256:b${i}`,
          after: `sha256:a${i}`,
          reason: `release ${i}`,
          details: { n: i },
        })
    }
    /** An audit log anchored in a fresh state folder: host audit key, fs artifacts bucket. */
    const anchored = (every: number, trust: TrustEntry[] = []): { audit: AuditLog; dir: string; bucket: FsBucket } => {
      const dir = mkdtempSync(join(tmpdir(), 'sovra-audit-'))
      dirs.push(dir)
      const bucket = new FsBucket(ARTIFACTS_BUCKET, join(dir, 'buckets'))
      const checkpoints = stateAuditCheckpoints({
        stateDir: dir,
        bucket: () => bucket,
        trust: () => trustPolicy(trust),
        env: { SOVRA_AUDIT_CHECKPOINT_EVERY: String(every) },
      })
      return { audit: auditLog(db, { checkpoints }), dir, bucket }
    }
    const stored = async (bucket: FsBucket): Promise<string[]> =>
      (await bucket.list({ prefix: CHECKPOINT_PREFIX })).objects.map((o) => o.key)
    /** Recomputes every hash from entry `from` on, as an owner hiding an edit would. */
    const rehash = async (from: number): Promise<void> => {
      const entries = await auditLog(db).list()
      let prev = entries.filter((e) => e.id < from).at(-1)?.hash ?? GENESIS
      const sql: string[] = []
      for (const e of entries.filter((x) => x.id >= from)) {
        const h = entryHash(prev, e)
        sql.push(`UPDATE sovra_audit SET prev_hash = '${prev}', hash = '${h}' WHERE id = ${e.id}`)
        prev = h
      }
      await owner(sql.join('; '))
    }

    beforeAll(async () => {
      ;({ db, done } = await open())
      await migrate(db)
    }, 60_000)
    beforeEach(async () => {
      await owner('TRUNCATE sovra_audit RESTART IDENTITY')
    })
    afterAll(async () => {
      await done?.()
      for (const d of dirs) rmSync(d, { recursive: true, force: true })
    })

    it('chains entries and verifies the chain', async () => {
      const audit = auditLog(db)
      const a = await audit.append({
        actor: 'alice',
        action: 'deploy',
        subject: 'ask',
        after: 'sha256:aa',
        reason: 'release 1',
      })
      const b = await audit.append({ actor: 'bob', action: 'approve', subject: 'change-1', details: { risk: 'high' } })
      expect(b.prevHash).toBe(a.hash)
      expect(await audit.verify()).toEqual({ ok: true, entries: 2, checkpoints: 0 })
      expect((await audit.list()).map((e) => [e.actor, e.action])).toEqual([
        ['alice', 'deploy'],
        ['bob', 'approve'],
      ])
    })

    it('refuses UPDATE, DELETE and TRUNCATE in the database itself', async () => {
      await seed(auditLog(db), 1)
      await expect(db.query("UPDATE sovra_audit SET actor = 'mallory'")).rejects.toThrow(/append-only: UPDATE refused/)
      await expect(db.query('DELETE FROM sovra_audit')).rejects.toThrow(/append-only: DELETE refused/)
      await expect(db.query('TRUNCATE sovra_audit')).rejects.toThrow(/append-only: TRUNCATE refused/)
    })

    it('verify names the first broken entry when the owner edits a row behind the triggers', async () => {
      const audit = auditLog(db)
      await audit.append({ actor: 'carol', action: 'rollback', subject: 'ask', reason: 'error rate' })
      await owner("UPDATE sovra_audit SET reason = 'routine' WHERE actor = 'carol'")
      const r = await audit.verify()
      expect(r).toMatchObject({ ok: false, brokenId: 1 })
      expect(problems(r)[0]).toMatch(/^entry 1 \(rollback ask by carol\) was edited/)
    })

    it.each(FIELD_EDITS)('detects an edit of %s and names the entry', async (_field, set) => {
      const audit = auditLog(db)
      await seed(audit, 4)
      await owner(`UPDATE sovra_audit SET ${set} WHERE id = 2`)
      const r = await audit.verify()
      expect(r).toMatchObject({ ok: false, brokenId: 2 })
      expect(problems(r)).toHaveLength(1)
      expect(problems(r)[0]).toMatch(
        /^entry 2 \(.+\) was edited: its fields hash to [0-9a-f]{12}\.\.\., the stored hash/,
      )
    })

    it('detects an edited link (prev_hash) and an edited stored hash', async () => {
      const audit = auditLog(db)
      await seed(audit, 4)
      await owner(`UPDATE sovra_audit SET prev_hash = '${'a'.repeat(64)}' WHERE id = 3`)
      const link = await audit.verify()
      expect(link).toMatchObject({ ok: false, brokenId: 3 })
      expect(problems(link)[0]).toMatch(/^entry 3 \(.+\): its stored link \(prev_hash\) was changed to a{12}/)
      await owner('TRUNCATE sovra_audit RESTART IDENTITY')
      await seed(audit, 4)
      await owner(`UPDATE sovra_audit SET hash = '${'b'.repeat(64)}' WHERE id = 4`)
      expect(await audit.verify()).toMatchObject({ ok: false, brokenId: 4 })
    })

    it('names a deleted row in the middle', async () => {
      const audit = auditLog(db)
      await seed(audit, 5)
      await owner('DELETE FROM sovra_audit WHERE id = 3')
      const r = await audit.verify()
      expect(r).toMatchObject({ ok: false, brokenId: 4, entries: 4 })
      expect(problems(r)[0]).toMatch(
        /^entry 4 \(artifact\.push model:m4 by user4\) links to [0-9a-f]{12}\.\.\., which no stored entry has: the entry before it was deleted \(id 3 is missing\)$/,
      )
    })

    it('names a deleted first row', async () => {
      const audit = auditLog(db)
      await seed(audit, 3)
      await owner('DELETE FROM sovra_audit WHERE id = 1')
      const r = await audit.verify()
      expect(r).toMatchObject({ ok: false, brokenId: 2 })
      expect(problems(r)[0]).toMatch(/^entry 2 .* the entry before it was deleted \(ids 1-1 are missing\)$/)
    })

    it('names reordered rows', async () => {
      const audit = auditLog(db)
      await seed(audit, 4)
      await owner(
        'UPDATE sovra_audit SET id = -2 WHERE id = 2; UPDATE sovra_audit SET id = 2 WHERE id = 3; UPDATE sovra_audit SET id = 3 WHERE id = -2',
      )
      const r = await audit.verify()
      expect(r).toMatchObject({ ok: false, brokenId: 2 })
      expect(problems(r)[0]).toMatch(
        /^rows were reordered: entry 2 \(artifact\.push model:m3 by user3\) links to entry 3, which is stored after it$/,
      )
    })

    it('writes a signed checkpoint every N entries and at once for security actions', async () => {
      const { audit, bucket, dir } = anchored(4)
      await seed(audit, 2)
      expect(await stored(bucket)).toEqual([])
      await audit.append({ actor: 'bob', action: 'approve', subject: 'chg-1' })
      await audit.append({ actor: 'bob', action: 'version.create', subject: 'ask' })
      await audit.append({ actor: 'bob', action: 'rollback.openwhisk', subject: 'ask' })
      await audit.append({ actor: 'bob', action: 'eval.attach', subject: 'ask' })
      await audit.append({ actor: 'bob', action: 'key.create', subject: 'key:1' })
      await audit.append({ actor: 'bob', action: 'signature.refused', subject: 'registry:x:latest' })
      expect(await stored(bucket)).toEqual([3, 4, 5, 7, 8].map(checkpointObject))
      const r = await audit.verify()
      expect(r).toMatchObject({ ok: true, entries: 8, checkpoints: 5, latest: { entries: 8, headId: 8 } })
      expect(r.ok && r.latest?.signer).toBe('host audit key')
      expect(
        (await import('node:fs')).statSync(join(dir, 'keys', 'audit.key')).mode & 0o777,
        'the host audit key is private',
      ).toBe(0o600)
    })

    it('catches the emptied table (R4: TRUNCATE as the owner)', async () => {
      const { audit } = anchored(3)
      await seed(audit, 9)
      await owner('TRUNCATE sovra_audit')
      // The chain alone cannot tell: an empty chain is intact.
      expect(await auditLog(db).verify()).toMatchObject({ ok: true, entries: 0 })
      const r = await audit.verify()
      expect(r).toMatchObject({ ok: false, entries: 0 })
      expect(r.ok ? undefined : r.brokenId).toBeUndefined()
      expect(problems(r)).toEqual([
        expect.stringMatching(
          /^the chain has 0 entries but the checkpoint of entry 9 signed at \S+ by host audit key \([0-9a-f]{16}\) covers 9 entries with head hash [0-9a-f]{12}\.\.\.: all 9 entries were deleted \(the table was emptied or truncated\)$/,
        ),
      ])
    })

    it('catches a deleted tail (R4: DELETE ... WHERE id >= 6 as the owner)', async () => {
      const { audit } = anchored(5)
      await seed(audit, 9)
      expect(await audit.checkpoint()).toMatchObject({ entries: 9, headId: 9 })
      await owner('DELETE FROM sovra_audit WHERE id >= 6')
      expect(await auditLog(db).verify()).toMatchObject({ ok: true, entries: 5 })
      const r = await audit.verify()
      expect(r).toMatchObject({ ok: false, entries: 5, checkpoints: 1 })
      expect(problems(r)).toEqual([
        expect.stringMatching(
          /^the chain has 5 entries but the checkpoint of entry 9 signed at .* covers 9 entries with head hash [0-9a-f]{12}\.\.\.: entries 6-9 were deleted$/,
        ),
      ])
    })

    it('catches a chain rewritten and re-hashed after an edit, and says where the change is', async () => {
      const { audit } = anchored(3)
      await seed(audit, 9)
      await owner("UPDATE sovra_audit SET reason = 'routine' WHERE id = 5")
      await rehash(5)
      expect(await auditLog(db).verify()).toMatchObject({ ok: true, entries: 9 })
      const r = await audit.verify()
      expect(r).toMatchObject({ ok: false, entries: 9, checkpoints: 1 })
      expect(problems(r)).toEqual([
        expect.stringMatching(
          /^the checkpoint of entry 6 signed at .* says entry 6 hashes to [0-9a-f]{12}\.\.\., but it now hashes to [0-9a-f]{12}\.\.\. \(id 6\): the chain was rewritten and re-hashed after it was signed; the checkpoint of entry 3 still matches, so the change is in entries 4-6; the checkpoints of entries 9 do not match either$/,
        ),
      ])
    })

    it('catches a row deleted from the middle and the rest re-hashed', async () => {
      const { audit } = anchored(3)
      await seed(audit, 9)
      await owner('DELETE FROM sovra_audit WHERE id = 8; UPDATE sovra_audit SET id = 8 WHERE id = 9')
      await rehash(8)
      const r = await audit.verify()
      expect(r).toMatchObject({ ok: false, entries: 8, checkpoints: 2 })
      expect(problems(r)).toEqual([
        expect.stringMatching(
          /^the chain has 8 entries but the checkpoint of entry 9 .*: entry 9 was deleted \(or, as entries 7-8 are covered by no matching checkpoint, earlier rows were deleted and the later ones re-hashed\)$/,
        ),
      ])
    })

    it('refuses a checkpoint changed after signing, or signed by a key not trusted for audit', async () => {
      const { audit, bucket, dir } = anchored(2)
      await seed(audit, 4)
      const object = checkpointObject(4)
      const envelope = JSON.parse(await ((await bucket.get(object))?.text() ?? '')) as { payload: string }
      const payload = JSON.parse(Buffer.from(envelope.payload, 'base64').toString()) as Record<string, unknown>
      await bucket.put(
        object,
        JSON.stringify({
          ...envelope,
          payload: Buffer.from(JSON.stringify({ ...payload, entries: 3 })).toString('base64'),
        }),
      )
      expect(problems(await audit.verify())).toEqual([
        `checkpoint ${object}: the signature by key ${(await audit.checkpoint()).keyid} does not verify: it was changed after signing`,
      ])
      // audit.checkpoint() re-signed entry 4; a checkpoint by a key of another host is named until it is trusted.
      const other = generateKey(join(dir, 'other'), 'gw')
      const head = { entries: 4, headId: 4, headHash: (await audit.list()).at(-1)?.hash ?? '' }
      await bucket.put(checkpointObject(4), JSON.stringify(signCheckpoint(head, new Date().toISOString(), other)))
      expect(problems(await audit.verify())[0]).toMatch(
        new RegExp(`^checkpoint ${object} is signed by key ${other.keyid}, which is not trusted for audit checkpoints`),
      )
      const pinned = auditLog(db, {
        checkpoints: stateAuditCheckpoints({
          stateDir: dir,
          bucket: () => bucket,
          trust: () => trustPolicy([{ name: 'gateway-audit', public_key: other.publicKey, kinds: ['audit'] }]),
        }),
      })
      expect(await pinned.verify()).toMatchObject({ ok: true, latest: { entries: 4, signer: 'gateway-audit' } })
    })
  })
}

suite('PGlite', async () => {
  const db = await openPglite()
  return { db, done: () => db.close() }
})
suite('PostgreSQL server', async () => {
  const schema = await createTestSchema('audit')
  const db = await openPg(schema.url)
  return {
    db,
    done: async () => {
      await db.close()
      await schema.drop()
    },
  }
})
