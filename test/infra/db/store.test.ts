import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../../runtime/core/ports.ts'
import { openPglite, lockPath } from '../../../infra/db/pglite.ts'
import { openPg } from '../../../infra/db/pg.ts'
import { loadMigrations, migrate } from '../../../infra/db/migrate.ts'
import { dbCronStore } from '../../../infra/db/cron-store.ts'
import { createTestSchema } from '../../support/pg.ts'

function storeSuite(
  name: string,
  open: () => Promise<{ db: Db; reopen: () => Promise<Db>; cleanup: () => Promise<void> }>,
) {
  describe(`Db: ${name}`, () => {
    let db: Db
    let reopen: () => Promise<Db>
    let cleanup: () => Promise<void>
    beforeAll(async () => {
      ;({ db, reopen, cleanup } = await open())
    }, 60_000)
    afterAll(async () => {
      await db.close()
      await cleanup()
    })

    it('runs parameterised queries in the PostgreSQL dialect', async () => {
      await db.exec(
        "CREATE TABLE t_items (id serial PRIMARY KEY, name text NOT NULL, tags jsonb NOT NULL DEFAULT '[]')",
      )
      const ins = await db.query<{ id: number }>(
        'INSERT INTO t_items (name, tags) VALUES ($1, $2), ($3, $4) RETURNING id',
        ['規程', JSON.stringify(['hr']), 'b', '[]'],
      )
      expect(ins.rowCount).toBe(2)
      const { rows } = await db.query<{ name: string; tags: string[] }>(
        'SELECT name, tags FROM t_items WHERE tags ? $1',
        ['hr'],
      )
      expect(rows).toEqual([{ name: '規程', tags: ['hr'] }])
    })

    it('commits a transaction that resolves and rolls back one that throws', async () => {
      await db.exec('CREATE TABLE t_tx (v int)')
      await db.tx(async (t) => {
        await t.query('INSERT INTO t_tx VALUES ($1)', [1])
      })
      await expect(
        db.tx(async (t) => {
          await t.query('INSERT INTO t_tx VALUES ($1)', [2])
          throw new Error('changed my mind')
        }),
      ).rejects.toThrowError('changed my mind')
      expect((await db.query<{ v: number }>('SELECT v FROM t_tx')).rows).toEqual([{ v: 1 }])
    })

    it('applies the numbered migrations once, and again is a no-op', async () => {
      const first = await migrate(db)
      expect(first).toEqual(loadMigrations().map((m) => m.version))
      expect(await migrate(db)).toEqual([])
      const { rows } = await db.query<{ name: string }>('SELECT name FROM sovra_migrations ORDER BY version')
      expect(rows.map((r) => r.name)).toEqual(loadMigrations().map((m) => m.name))
      await db.query(
        "INSERT INTO sovra_events (function, source, dedupe_key, object_key, sequencer, payload) VALUES ('f', 'fs', 'k', 'b/k', '1', '{}')",
      )
      await expect(
        db.query(
          "INSERT INTO sovra_events (function, source, dedupe_key, object_key, sequencer, payload) VALUES ('f', 'fs', 'k', 'b/k', '1', '{}')",
        ),
      ).rejects.toThrowError(/duplicate key|unique/)
    })

    it('records cron runs and answers the latest scheduled time per cron', async () => {
      const store = dbCronStore(db)
      expect(await store.lastScheduled('report', '0 2 * * *')).toBeUndefined()
      const t1 = Date.parse('2026-11-27T17:00:00Z')
      await store.record({
        function: 'report',
        cron: '0 2 * * *',
        scheduledTime: t1,
        status: 'failed',
        attempts: 1,
        error: 'x',
      })
      await store.record({ function: 'report', cron: '0 2 * * *', scheduledTime: t1, status: 'ok', attempts: 2 })
      await store.record({
        function: 'report',
        cron: '0 2 * * *',
        scheduledTime: t1 - 86_400_000,
        status: 'ok',
        attempts: 1,
      })
      expect(await store.lastScheduled('report', '0 2 * * *')).toBe(t1)
      const { rows } = await db.query<{ status: string; attempts: number }>(
        'SELECT status, attempts FROM sovra_cron_runs WHERE scheduled_time = $1',
        [new Date(t1).toISOString()],
      )
      expect(rows).toEqual([{ status: 'ok', attempts: 2 }])
    })

    it('refuses a migration that changed after it was applied', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sovra-mig-'))
      writeFileSync(join(dir, '900_extra.sql'), 'CREATE TABLE t_extra (a int);')
      const [extra] = loadMigrations(dir)
      await migrate(db, [...loadMigrations(), extra!])
      await expect(
        migrate(db, [
          ...loadMigrations(),
          { ...extra!, sql: 'CREATE TABLE t_extra (a int, b int);', checksum: 'f'.repeat(64) },
        ]),
      ).rejects.toThrowError(/migration 900_extra\.sql changed after it was applied .*append-only/)
      rmSync(dir, { recursive: true, force: true })
    })

    it('keeps data across close and reopen', async () => {
      await db.exec('CREATE TABLE t_keep (v text)')
      await db.query('INSERT INTO t_keep VALUES ($1)', ['kept'])
      await db.close()
      db = await reopen()
      expect((await db.query<{ v: string }>('SELECT v FROM t_keep')).rows).toEqual([{ v: 'kept' }])
    })
  })
}

storeSuite('PGlite (embedded)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sovra-pglite-'))
  const dataDir = join(dir, 'db')
  return {
    db: await openPglite(dataDir),
    reopen: () => openPglite(dataDir),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  }
})

storeSuite('PostgreSQL server', async () => {
  const schema = await createTestSchema('sovra_store')
  return { db: await openPg(schema.url), reopen: () => openPg(schema.url), cleanup: schema.drop }
})

describe('PGlite specifics', () => {
  it('has pgvector with an HNSW cosine index', async () => {
    const db = await openPglite()
    await db.exec('CREATE TABLE t_vec (id int, v vector(3)); CREATE INDEX ON t_vec USING hnsw (v vector_cosine_ops);')
    await db.query('INSERT INTO t_vec VALUES (1, $1), (2, $2)', ['[1,0,0]', '[0,1,0]'])
    const { rows } = await db.query<{ id: number }>('SELECT id FROM t_vec ORDER BY v <=> $1 LIMIT 1', ['[0.9,0.1,0]'])
    expect(rows).toEqual([{ id: 1 }])
    await db.close()
  }, 60_000)

  it('refuses a second opener of the same folder, naming the holder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sovra-lock-'))
    const dataDir = join(dir, 'db')
    // Another live process holds the lock: our parent (the vitest main process) stands in for it.
    writeFileSync(lockPath(dataDir), String(process.ppid))
    await expect(openPglite(dataDir)).rejects.toThrowError(new RegExp(`in use by process ${process.ppid}`))
    // A lock whose process is gone is taken over.
    writeFileSync(lockPath(dataDir), '999999')
    const db = await openPglite(dataDir)
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  }, 60_000)
})

describe('migrations from two connections at once (PostgreSQL server)', () => {
  it('applies each migration exactly once', async () => {
    const schema = await createTestSchema('sovra_race')
    const [a, b] = await Promise.all([openPg(schema.url), openPg(schema.url)])
    const [ra, rb] = await Promise.all([migrate(a!), migrate(b!)])
    expect([...ra, ...rb].sort()).toEqual(loadMigrations().map((m) => m.version))
    const { rows } = await a!.query<{ n: string }>('SELECT count(*) AS n FROM sovra_migrations')
    expect(Number(rows[0]?.n)).toBe(loadMigrations().length)
    await a!.close()
    await b!.close()
    await schema.drop()
  })
})
