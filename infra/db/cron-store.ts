import type { Db } from '../../runtime/core/ports.ts'
import type { CronRunRecord, CronRunStore } from '../../triggers/cron/scheduler.ts'

/**
 * Cron runs in the SQL store (`sovra_cron_runs`): what catch-up after downtime reads, and what an auditor reads to
 * see every scheduled run, its attempts and its outcome.
 * @param db the store (migrated)
 */
export function dbCronStore(db: Db): CronRunStore {
  return {
    async lastScheduled(fn, cron) {
      const { rows } = await db.query<{ t: Date | string | null }>(
        'SELECT max(scheduled_time) AS t FROM sovra_cron_runs WHERE function = $1 AND cron = $2',
        [fn, cron],
      )
      const t = rows[0]?.t
      return t === null || t === undefined ? undefined : new Date(t).getTime()
    },
    async record(run: CronRunRecord) {
      await db.query(
        `INSERT INTO sovra_cron_runs (function, cron, scheduled_time, status, attempts, last_error, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, now())
         ON CONFLICT (function, cron, scheduled_time) DO UPDATE
           SET status = EXCLUDED.status, attempts = EXCLUDED.attempts, last_error = EXCLUDED.last_error, finished_at = now()`,
        [
          run.function,
          run.cron,
          new Date(run.scheduledTime).toISOString(),
          run.status,
          run.attempts,
          run.error ?? null,
        ],
      )
    },
  }
}
