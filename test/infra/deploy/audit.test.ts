import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { migrate } from '../../../infra/db/migrate.ts'
import { openPg } from '../../../infra/db/pg.ts'
import { openPglite } from '../../../infra/db/pglite.ts'
import { auditLog } from '../../../infra/deploy/audit.ts'
import type { Db } from '../../../runtime/core/ports.ts'
import { createTestSchema } from '../../support/pg.ts'

function suite(name: string, open: () => Promise<{ db: Db; done(): Promise<void> }>): void {
  describe(`audit log (${name})`, () => {
    let db: Db
    let done: () => Promise<void>
    beforeAll(async () => {
      ;({ db, done } = await open())
      await migrate(db)
    }, 60_000)
    afterAll(async () => {
      await done?.()
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
      expect(await audit.verify()).toEqual({ ok: true, entries: 2 })
      expect((await audit.list()).map((e) => [e.actor, e.action])).toEqual([
        ['alice', 'deploy'],
        ['bob', 'approve'],
      ])
    })

    it('refuses UPDATE, DELETE and TRUNCATE in the database itself', async () => {
      await expect(db.query("UPDATE sovra_audit SET actor = 'mallory'")).rejects.toThrow(/append-only: UPDATE refused/)
      await expect(db.query('DELETE FROM sovra_audit')).rejects.toThrow(/append-only: DELETE refused/)
      await expect(db.query('TRUNCATE sovra_audit')).rejects.toThrow(/append-only: TRUNCATE refused/)
    })

    it('verify names the first broken entry when the owner edits a row behind the triggers', async () => {
      const audit = auditLog(db)
      await audit.append({ actor: 'carol', action: 'rollback', subject: 'ask', reason: 'error rate' })
      // The table owner can switch the triggers off; the chain still tells.
      await db.exec(
        "ALTER TABLE sovra_audit DISABLE TRIGGER sovra_audit_no_change; UPDATE sovra_audit SET reason = 'routine' WHERE actor = 'carol'; ALTER TABLE sovra_audit ENABLE TRIGGER sovra_audit_no_change",
      )
      const r = await audit.verify()
      expect(r.ok).toBe(false)
      if (!r.ok) {
        const carol = (await audit.list()).find((e) => e.actor === 'carol')
        expect(r.brokenId).toBe(carol?.id)
        expect(r.reason).toMatch(/\(rollback ask by carol\) was edited/)
      }
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
