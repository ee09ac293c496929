import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { vector } from '@electric-sql/pglite/vector'
import { SovraError } from '../../runtime/core/errors.ts'
import type { Db, QueryResult } from '../../runtime/core/ports.ts'

/** The lock file that keeps a second process off a PGlite folder (PGlite is single-process). */
export function lockPath(dataDir: string): string {
  return `${dataDir.replace(/\/+$/, '')}.lock`
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Takes the folder's lock for this process, or fails naming the process that holds it. A lock left by a process
 * that no longer runs is taken over.
 * @param dataDir the PGlite folder
 */
export function acquireLock(dataDir: string): () => void {
  const file = lockPath(dataDir)
  mkdirSync(dirname(file), { recursive: true })
  if (existsSync(file)) {
    const holder = Number(readFileSync(file, 'utf8').trim())
    if (Number.isInteger(holder) && holder !== process.pid && alive(holder)) {
      throw new SovraError(
        'ERR_CONFIG',
        `the embedded database ${dataDir} is in use by process ${holder} (lock ${file}); PGlite allows one process: stop it, or use its admin API (sovra commands do while a host runs)`,
      )
    }
  }
  writeFileSync(file, String(process.pid))
  return () => rmSync(file, { force: true })
}

/**
 * Opens the embedded store: PGlite (PostgreSQL 17 in WASM) with pgvector, persisted in `dataDir` (in memory when
 * undefined), locked to this process.
 * @param dataDir the folder, e.g. `.sovra/state/db`
 * @example
 * const db = await openPglite('.sovra/state/db')
 * await db.query('select 1')
 */
export async function openPglite(dataDir?: string): Promise<Db> {
  const release = dataDir === undefined ? () => undefined : acquireLock(dataDir)
  let pg: PGlite
  try {
    if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true })
    pg = await PGlite.create({ ...(dataDir === undefined ? {} : { dataDir }), extensions: { vector } })
    await pg.exec('CREATE EXTENSION IF NOT EXISTS vector')
  } catch (error) {
    release()
    throw error instanceof SovraError
      ? error
      : new SovraError(
          'ERR_INTERNAL',
          `could not open the embedded database${dataDir === undefined ? '' : ` ${dataDir}`}: ${(error as Error).message}`,
          { cause: error },
        )
  }
  const run = async <T>(
    q: Pick<PGlite, 'query'>,
    sql: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<T>> => {
    const r = await q.query<T>(sql, params === undefined ? [] : [...params])
    return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length }
  }
  return {
    query: (sql, params) => run(pg, sql, params),
    exec: async (sql) => void (await pg.exec(sql)),
    tx: (fn) =>
      pg.transaction((t) =>
        fn({ query: (sql, params) => run(t, sql, params), exec: async (sql) => void (await t.exec(sql)) }),
      ),
    close: async () => {
      await pg.close()
      release()
    },
  }
}
