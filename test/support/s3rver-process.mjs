// Runs s3rver (an S3-compatible server; MinIO cannot be installed here) on 127.0.0.1 for tests, in its own process
// because its list continuation tokens need --openssl-legacy-provider (docs/platform-notes.md). Prints {"port"} then one JSON line
// per S3 event record. Usage: node --openssl-legacy-provider s3rver-process.mjs <dir> <bucket>...
import S3rver from 's3rver'

const [dir, ...buckets] = process.argv.slice(2)
const server = new S3rver({
  port: 0,
  address: '127.0.0.1',
  silent: true,
  directory: dir,
  configureBuckets: buckets.map((name) => ({ name })),
})
server.on('event', (event) => process.stdout.write(`${JSON.stringify({ event })}\n`))
const { port } = await server.run()
process.stdout.write(`${JSON.stringify({ port })}\n`)
const stop = () => server.close(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.on('disconnect', stop)
