import pg from 'pg'

/**
 * The PostgreSQL server the store tests use. CI (.ci/run) starts it and creates the database; when it is absent the
 * tests that need it fail, they are never skipped.
 */
export const PG_URL = process.env['SOVRA_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/sovra_test'

/**
 * Creates a fresh schema for one test (runs of the suite never see each other's tables) and gives a URL whose
 * connections use it.
 * @param prefix names the schema, for whoever looks at the server
 */
export async function createTestSchema(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const schema = `${prefix}_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  await admin.end()
  return {
    url: `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    async drop() {
      const c = new pg.Client({ connectionString: PG_URL })
      await c.connect()
      await c.query(`DROP SCHEMA ${schema} CASCADE`)
      await c.end()
    },
  }
}
