import { join } from 'node:path'
import type { Db } from '../core/ports.ts'
import type { Project } from '../config/resolve.ts'
import { openPglite } from '../../infra/db/pglite.ts'
import { openPg } from '../../infra/db/pg.ts'
import { migrate } from '../../infra/db/migrate.ts'
import { stateDir } from './storage.ts'

/** True when the project has durable triggers (crons, object triggers) and so needs the SQL store. */
export function needsStore(project: Project): boolean {
  return project.functions.some((f) => f.crons.length > 0 || (f.worker.object_triggers?.length ?? 0) > 0)
}

/**
 * Opens and migrates the SQL store: a PostgreSQL server when `SOVRA_DATABASE_URL` or `[database] url` names one,
 * else the embedded PGlite under `<state>/db` (one process at a time).
 * @param project the resolved project
 * @param options environment variables and the state folder
 */
export async function openStore(project: Project, options: { env?: Record<string, string | undefined>; state?: string } = {}): Promise<Db> {
  const env = options.env ?? process.env
  const url = env['SOVRA_DATABASE_URL'] ?? project.config.database?.url
  const db = url !== undefined && url !== '' ? await openPg(url) : await openPglite(join(stateDir(project, options.state), 'db'))
  try {
    await migrate(db)
  } catch (error) {
    await db.close()
    throw error
  }
  return db
}
