import { describe, expect, it } from 'vitest'

import { openPglite } from '../../../infra/db/pglite.ts'
import { loadMigrations, migrate } from '../../../infra/db/migrate.ts'
import { controlPlane } from '../../../infra/deploy/control-plane.ts'

describe('changes name their deploy target', () => {
  it('maps migration 006 cluster changes onto target openwhisk (stable or canary by weight)', async () => {
    const db = await openPglite()
    try {
      const all = loadMigrations()
      await migrate(
        db,
        all.filter((m) => m.version <= 6),
      )
      await db.query(
        "INSERT INTO sovra_versions (id, function, bundle_sha256, config_sha256, manifest, risk, created_by) VALUES ('f@1', 'f', 'a', 'b', '{}', 'high', 'alice')",
      )
      await db.query(
        "INSERT INTO sovra_changes (id, function, version, action, canary_weight, risk, author, required, status) VALUES ('chg-1', 'f', 'f@1', 'openwhisk', NULL, 'high', 'alice', 2, 'pending'), ('chg-2', 'f', 'f@1', 'openwhisk', 20, 'high', 'alice', 2, 'applied'), ('chg-3', 'f', 'f@1', 'canary', 5, 'high', 'alice', 2, 'pending')",
      )
      await migrate(db, all)
      const rows = (
        await db.query<{ id: string; action: string; target: string }>(
          'SELECT id, action, target FROM sovra_changes ORDER BY id',
        )
      ).rows
      expect(rows).toEqual([
        { id: 'chg-1', action: 'promote', target: 'openwhisk' },
        { id: 'chg-2', action: 'canary', target: 'openwhisk' },
        { id: 'chg-3', action: 'canary', target: 'local' },
      ])
      await expect(db.query("UPDATE sovra_changes SET action = 'openwhisk' WHERE id = 'chg-1'")).rejects.toThrow(
        /sovra_changes_action_check/,
      )
    } finally {
      await db.close()
    }
  })

  it('applies a change for another target without touching the host routing, and finds it by target', async () => {
    const db = await openPglite()
    try {
      await migrate(db)
      const cp = controlPlane(db)
      const v = await cp.recordVersion({
        function: 'f',
        bundleSha256: 'a'.repeat(64),
        configSha256: 'b'.repeat(64),
        manifest: {},
        risk: 'low',
        createdBy: 'alice',
      })
      const cluster = await cp.requestChange({
        function: 'f',
        version: v.id,
        action: 'promote',
        target: 'openwhisk',
        risk: 'low',
        author: 'alice',
      })
      expect(cluster).toMatchObject({ status: 'applied', target: 'openwhisk' })
      expect(await cp.routing('f')).toBeUndefined()
      expect((await cp.changeFor(v.id, 'openwhisk'))?.id).toBe(cluster.id)
      expect(await cp.changeFor(v.id, 'local')).toBeUndefined()
      const local = await cp.requestChange({
        function: 'f',
        version: v.id,
        action: 'promote',
        risk: 'low',
        author: 'alice',
      })
      expect(local.target).toBe('local')
      expect((await cp.routing('f'))?.stable).toBe(v.id)
    } finally {
      await db.close()
    }
  })
})

describe('audit entries of routing changes', () => {
  it('name what a promotion and a canary replace (before)', async () => {
    const db = await openPglite()
    try {
      await migrate(db)
      const cp = controlPlane(db)
      const v = (n: string) =>
        cp.recordVersion({
          function: 'f',
          bundleSha256: n.repeat(64),
          configSha256: 'b'.repeat(64),
          manifest: {},
          risk: 'low',
          createdBy: 'alice',
        })
      const v1 = await v('1')
      const v2 = await v('2')
      const v3 = await v('3')
      await cp.requestChange({ function: 'f', version: v1.id, action: 'promote', risk: 'low', author: 'alice' })
      await cp.requestChange({
        function: 'f',
        version: v2.id,
        action: 'canary',
        weight: 10,
        risk: 'low',
        author: 'alice',
      })
      await cp.requestChange({
        function: 'f',
        version: v3.id,
        action: 'canary',
        weight: 20,
        risk: 'low',
        author: 'alice',
      })
      await cp.promote('f', 'alice', 'low')
      const entries = (
        await db.query<{ action: string; before: string | null; after: string | null }>(
          "SELECT action, before_digest AS before, after_digest AS after FROM sovra_audit WHERE subject = 'f' ORDER BY id",
        )
      ).rows
      expect(entries.filter((e) => e.action !== 'version.create')).toEqual([
        { action: 'deploy', before: null, after: v1.id },
        { action: 'canary', before: null, after: v2.id },
        { action: 'canary', before: v2.id, after: v3.id },
        { action: 'promote', before: v1.id, after: v3.id },
      ])
    } finally {
      await db.close()
    }
  })
})
