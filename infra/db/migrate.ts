import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SovraError } from '../../runtime/core/errors.ts'
import type { Db } from '../../runtime/core/ports.ts'

/** One numbered migration. */
export interface Migration {
  version: number
  name: string
  sql: string
  checksum: string
}

/** An arbitrary, fixed advisory-lock key for migrations (pg_advisory_xact_lock takes a bigint). */
export const MIGRATION_LOCK = 7_368_112_001

const DIR = fileURLToPath(new URL('./migrations/', import.meta.url))

/**
 * Reads the numbered `NNN_name.sql` files, in order.
 * @param dir the folder (default infra/db/migrations)
 */
export function loadMigrations(dir = DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => {
      const sql = readFileSync(join(dir, f), 'utf8')
      return { version: Number(f.slice(0, 3)), name: f, sql, checksum: createHash('sha256').update(sql).digest('hex') }
    })
}

/**
 * Applies the migrations not yet applied, each recorded with its checksum, all in one transaction under an
 * advisory lock: running it twice, or from two processes at once, applies each migration exactly once. A migration
 * whose file changed after it was applied is refused (migrations are append-only).
 * @param db the store
 * @param migrations the migrations (default: the shipped ones)
 * @returns the versions applied now
 */
export async function migrate(db: Db, migrations: Migration[] = loadMigrations()): Promise<number[]> {
  return db.tx(async (t) => {
    await t.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
    await t.exec(`CREATE TABLE IF NOT EXISTS sovra_migrations (
      version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
    const { rows } = await t.query<{ version: number; name: string; checksum: string }>(
      'SELECT version, name, checksum FROM sovra_migrations ORDER BY version',
    )
    const applied = new Map(rows.map((r) => [r.version, r]))
    const now: number[] = []
    for (const m of migrations) {
      const done = applied.get(m.version)
      if (done !== undefined) {
        if (done.checksum !== m.checksum) {
          throw new SovraError(
            'ERR_CONFIG',
            `migration ${m.name} changed after it was applied (recorded sha256 ${done.checksum.slice(0, 12)}, file ${m.checksum.slice(0, 12)}); migrations are append-only: add a new one instead`,
          )
        }
        continue
      }
      await t.exec(m.sql)
      await t.query('INSERT INTO sovra_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        m.version,
        m.name,
        m.checksum,
      ])
      now.push(m.version)
    }
    return now
  })
}
