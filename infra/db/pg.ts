import pg from 'pg'
import { SovraError } from '../../runtime/core/errors.ts'
import type { Db, QueryResult } from '../../runtime/core/ports.ts'

/**
 * Opens a PostgreSQL server connection pool (`[database] url` or `SOVRA_DATABASE_URL`).
 * @param url a postgres:// URL
 * @param options pool size
 * @example
 * const db = await openPg('postgres://sovra@db.internal:5432/sovra')
 */
export async function openPg(url: string, options: { max?: number } = {}): Promise<Db> {
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 10 })
  try {
    await pool.query('select 1')
  } catch (error) {
    await pool.end()
    throw new SovraError('ERR_CONFIG', `cannot connect to PostgreSQL at ${redact(url)}: ${(error as Error).message}`, {
      cause: error,
    })
  }
  const run = async <T>(
    client: pg.Pool | pg.PoolClient,
    sql: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<T>> => {
    const r = await client.query(sql, params === undefined ? [] : [...params])
    return { rows: r.rows as T[], rowCount: r.rowCount ?? r.rows.length }
  }
  return {
    query: (sql, params) => run(pool, sql, params),
    exec: async (sql) => void (await pool.query(sql)),
    async tx(fn) {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        const result = await fn({
          query: (sql, params) => run(client, sql, params),
          exec: async (sql) => void (await client.query(sql)),
        })
        await client.query('COMMIT')
        return result
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined)
        throw error
      } finally {
        client.release()
      }
    },
    close: () => pool.end(),
  }
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return '(unparseable database URL)'
  }
}
