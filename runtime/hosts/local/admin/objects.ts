import { Hono, type Context } from 'hono'

import { isSovraError, SovraError } from '../../../core/errors.ts'
import { validateBucketName, validateKey } from '../../../core/object-keys.ts'
import type { Bucket } from '../../../core/ports.ts'
import type { AdminEnv } from '../../app/host-app.ts'
import type { LocalAppOptions } from '../app.ts'

/**
 * A "." or ".." segment in the path as the client sent it (`%2e` counts: WHATWG URLs read it as a dot; so does `\`
 * as a separator). The URL the app sees is already normalised, so `docs/a/./b` would arrive as key `a/b`: the raw
 * request target is the only place such a key can still be refused (issue 11).
 * @param target the request target, e.g. `/_sovra/objects/docs/a/./b?x=1`
 */
function dotSegment(target: string): string | undefined {
  const path = target.split(/[?#]/, 1)[0] ?? ''
  return path.split(/[/\\]/).find((s) => {
    const dots = s.replace(/%2e/gi, '.')
    return dots === '.' || dots === '..'
  })
}

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
    try {
      validateBucketName(name)
    } catch (error) {
      // The store's rule, answered as the caller's mistake (400) rather than a config error.
      throw isSovraError(error) ? new SovraError('ERR_BAD_REQUEST', error.message) : error
    }
    return options.buckets(name)
  }
  /** The bucket and key of an object route, refused before any store call when the client's path had dot steps. */
  const target = (c: Context<AdminEnv>): { bucket: Bucket; key: string; name: string } => {
    const raw = c.env?.incoming?.url
    const dot = raw === undefined ? undefined : dotSegment(raw)
    if (dot !== undefined)
      throw new SovraError(
        'ERR_BAD_REQUEST',
        `object path ${JSON.stringify(raw)} has a ${JSON.stringify(dot)} segment, which URL normalisation would turn into another key or bucket; valid: keys without "." or ".." segments, each segment percent-encoded`,
      )
    const key = c.req.param('key') ?? ''
    validateKey(key)
    const name = c.req.param('bucket') ?? ''
    return { bucket: bucketOf(name), key, name }
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
    const { bucket, key, name } = target(c)
    const obj = await bucket.get(key)
    if (obj === null) throw new SovraError('ERR_NOT_FOUND', `no object ${name}/${key}`)
    return new Response(obj.body, {
      headers: {
        'content-type': obj.httpMetadata.contentType ?? 'application/octet-stream',
        'content-length': String(obj.size),
        etag: obj.httpEtag,
      },
    })
  })
  app.put('/objects/:bucket/:key{.+}', async (c) => {
    const { bucket, key } = target(c)
    const contentType = c.req.header('content-type')
    // Streamed into the store: a large upload is never held in memory whole.
    const put = await bucket.put(
      key,
      c.req.raw.body,
      contentType === undefined ? {} : { httpMetadata: { contentType } },
    )
    return c.json(put, 201)
  })
  app.delete('/objects/:bucket/:key{.+}', async (c) => {
    const { bucket, key } = target(c)
    await bucket.delete(key)
    return new Response(null, { status: 204 })
  })

  return app
}
