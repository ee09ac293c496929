import { Hono } from 'hono'

import { SovraError } from '../../../core/errors.ts'
import type { Bucket } from '../../../core/ports.ts'
import type { AdminEnv } from '../../app/host-app.ts'
import type { LocalAppOptions } from '../app.ts'

/**
 * `/_sovra/objects` (list, get, put, delete) and `/_sovra/pools`: what `sovra objects` and `sovra pools` use while a
 * host holds the state.
 * @param options the host's buckets and pool directory
 */
export function objectsAdmin(options: LocalAppOptions): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>()
  app.get('/pools', (c) => c.json(options.pools?.summary() ?? []))
  // Objects: what `sovra objects` uses while this host runs (fs writes fire object triggers as function writes do).
  const bucketOf = (name: string): Bucket => {
    if (options.buckets === undefined) throw new SovraError('ERR_NOT_FOUND', 'this host has no storage configured')
    return options.buckets(name)
  }
  app.get('/objects/:bucket', async (c) => {
    const limit = c.req.query('limit')
    const cursor = c.req.query('cursor')
    return c.json(
      await bucketOf(c.req.param('bucket')).list({
        prefix: c.req.query('prefix') ?? '',
        ...(limit === undefined ? {} : { limit: Number(limit) }),
        ...(cursor === undefined ? {} : { cursor }),
      }),
    )
  })
  app.get('/objects/:bucket/:key{.+}', async (c) => {
    const obj = await bucketOf(c.req.param('bucket')).get(c.req.param('key'))
    if (obj === null) throw new SovraError('ERR_NOT_FOUND', `no object ${c.req.param('bucket')}/${c.req.param('key')}`)
    return new Response(obj.body, {
      headers: { 'content-type': obj.httpMetadata.contentType ?? 'application/octet-stream', etag: obj.httpEtag },
    })
  })
  app.put('/objects/:bucket/:key{.+}', async (c) => {
    const body = new Uint8Array(await c.req.arrayBuffer())
    const contentType = c.req.header('content-type')
    const put = await bucketOf(c.req.param('bucket')).put(
      c.req.param('key'),
      body,
      contentType === undefined ? {} : { httpMetadata: { contentType } },
    )
    return c.json(put, 201)
  })
  app.delete('/objects/:bucket/:key{.+}', async (c) => {
    await bucketOf(c.req.param('bucket')).delete(c.req.param('key'))
    return new Response(null, { status: 204 })
  })

  return app
}
