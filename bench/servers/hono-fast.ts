// The fast limit: a bare @hono/node-server app answering the same JSON with `c.json`, reading only the method and
// URL (no Request object is built, no handler module is called). With `io` as the second argument it first waits
// 200 ms, as an I/O-bound function would (the I/O case's limit: connections / 0.2 s).
import { serve } from '@hono/node-server'
import { Hono, type Context } from 'hono'

const port = Number(process.argv[2] ?? 0)
const answer = (c: Context): Response => {
  const url = c.req.url
  const q = url.indexOf('?')
  return c.json({ method: c.req.method, path: c.req.path, query: q < 0 ? '' : url.slice(q) })
}
const app = new Hono()
// A synchronous handler in the JSON case: @hono/node-server then writes the response without awaiting anything.
if (process.argv[3] === 'io')
  app.all('*', async (c) => answer(await new Promise<Context>((resolve) => setTimeout(resolve, 200, c))))
else app.all('*', answer)
const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, (info) => console.log(`listening ${info.port}`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
