// An OpenWhisk Node.js action proxy (one "container"), as observed (docs/platform-notes.md). Started by action-proxy.ts; prints
// its port on the first line of stdout. Plain JavaScript so it runs in a bare Node process, as the real one does.
import { createRequire } from 'node:module'
import { createServer } from 'node:http'
import { Buffer } from 'node:buffer'
import { setInterval } from 'node:timers'

let main
const require = createRequire(import.meta.url)
const server = createServer((req, res) => {
  const chunks = []
  req.on('data', (c) => chunks.push(c))
  req.on('end', () => {
    const send = (status, body) =>
      void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    const msg = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')
    if (req.url === '/init') {
      if (main !== undefined) return send(403, { error: 'Cannot initialize the action more than once.' })
      const v = msg.value ?? {}
      try {
        const module = { exports: {} }
        for (const [k, val] of Object.entries(v.env ?? {})) process.env[k] = val
        new Function('module', 'exports', 'require', String(v.code ?? ''))(module, module.exports, require)
        const entry = module.exports[String(v.main ?? 'main')]
        if (typeof entry !== 'function')
          throw new Error(`Action entrypoint '${String(v.main ?? 'main')}' is not a function.`)
        main = entry
        return send(200, { OK: true })
      } catch (e) {
        return send(502, { error: `Initialization has failed due to: ${e.message}` })
      }
    }
    if (req.url === '/run') {
      if (main === undefined) return send(403, { error: 'The action has not been initialized.' })
      process.env.__OW_ACTIVATION_ID = msg.activation_id ?? ''
      process.env.__OW_DEADLINE = msg.deadline ?? ''
      process.env.__OW_ACTION_NAME = msg.action_name ?? ''
      process.env.__OW_NAMESPACE = msg.namespace ?? ''
      // provide-api-key: the invoker passes the action's key; the API host comes from the container's env.
      if (msg.api_key !== undefined) process.env.__OW_API_KEY = msg.api_key
      let result
      try {
        result = main(msg.value ?? {})
      } catch (e) {
        return send(502, { error: `An error has occurred: ${e.message}` })
      }
      Promise.resolve(result).then(
        (r) =>
          typeof r === 'object' && r !== null && !Array.isArray(r)
            ? send(200, r)
            : send(502, { error: 'The action did not return a dictionary.' }),
        (e) => send(200, { error: e instanceof Error ? { message: e.message } : e }),
      )
      return
    }
    send(404, { error: `no route ${req.url}` })
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`))
// A container outlives nothing: when the test process that started it is gone, so is it.
const parent = process.ppid
setInterval(() => {
  try {
    process.kill(parent, 0)
  } catch {
    process.exit(0)
  }
}, 1000).unref()
