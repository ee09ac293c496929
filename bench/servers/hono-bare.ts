// The limit: a bare @hono/node-server app calling the same handler in-process (no isolates, no logs, no metrics).
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import handler from '../fixtures/handler.js'

const port = Number(process.argv[2] ?? 0)
const app = new Hono()
app.all('*', (c) => handler.fetch(c.req.raw))
const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, (info) => console.log(`listening ${info.port}`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
