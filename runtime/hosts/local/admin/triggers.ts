import { Hono } from 'hono'

import { SovraError } from '../../../core/errors.ts'
import { syntheticEvent } from '../../../../triggers/object/synthetic.ts'
import type { AdminEnv } from '../../app/host-app.ts'
import type { LocalAppOptions } from '../app.ts'

/**
 * `/_sovra/triggers`: the next cron runs per function, firing a cron now, and a synthetic object event (what
 * `sovra trigger` uses while a host runs).
 * @param options the host's functions, scheduler, event intake and buckets
 */
export function triggersAdmin(options: LocalAppOptions): Hono<AdminEnv> {
  const { functions } = options
  const app = new Hono<AdminEnv>()
  app.get('/triggers', (c) => {
    const upcoming = options.crons?.upcoming(5) ?? []
    return c.json(
      functions.all().map(({ config }) => ({
        function: config.name,
        routes: config.routes,
        crons: upcoming
          .filter((u) => u.spec.function === config.name)
          .map((u) => ({
            cron: u.spec.cron,
            timezone: u.spec.timezone ?? 'UTC',
            next: u.times.map((t) => new Date(t).toISOString()),
          })),
      })),
    )
  })

  app.post('/triggers/cron/:fn', async (c) => {
    const fn = c.req.param('fn')
    if (functions.get(fn) === undefined)
      throw new SovraError(
        'ERR_NOT_FOUND',
        `No function ${JSON.stringify(fn)}; functions: ${functions
          .all()
          .map((f) => f.config.name)
          .join(', ')}`,
      )
    if (options.crons === undefined || functions.get(fn)?.config.crons.length === 0)
      throw new SovraError('ERR_BAD_REQUEST', `function ${JSON.stringify(fn)} has no crons`)
    const run = await options.crons.fire(fn, c.req.query('cron'))
    return c.json({ ...run, scheduledTime: new Date(run.scheduledTime).toISOString() }, run.status === 'ok' ? 200 : 500)
  })

  app.post('/triggers/object', async (c) => {
    if (options.events === undefined) throw new SovraError('ERR_NOT_FOUND', 'this host has no object triggers')
    const body = (await c.req.json().catch(() => ({}))) as { bucket?: unknown; key?: unknown; type?: unknown }
    if (
      typeof body.bucket !== 'string' ||
      typeof body.key !== 'string' ||
      (body.type !== undefined && body.type !== 'created' && body.type !== 'removed')
    ) {
      throw new SovraError(
        'ERR_BAD_REQUEST',
        `expected {"bucket","key","type":"created"|"removed"}, received ${JSON.stringify(body)}`,
      )
    }
    const event = await syntheticEvent(
      body.bucket,
      body.key,
      (body.type ?? 'created') as 'created' | 'removed',
      options.buckets,
    )
    return c.json(await options.events.ingest([event]))
  })

  return app
}
