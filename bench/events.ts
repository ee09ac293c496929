/**
 * Object events end to end on the embedded host: MinIO webhook POST -> committed to the queue -> handler done, with
 * PGlite and with the PostgreSQL server (SOVRA_TEST_DATABASE_URL, default the machine's). Events/s over the whole
 * batch and p50/p95 of per-event latency (queued -> done). Part of `npm run bench`; writes
 * bench/results/events.json.
 */
import { mkdirSync, mkdtempSync, writeFileSync, cpSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import type { Db } from '../runtime/core/ports.ts'
import { loadConfig } from '../runtime/config/load.ts'
import { LocalHost } from '../runtime/hosts/local/host.ts'
import { SILENT_LOGGER } from '../runtime/hosts/local/observer.ts'
import { createPromMetrics } from '../infra/observe/metrics.ts'
import { openPglite } from '../infra/db/pglite.ts'
import { openPg } from '../infra/db/pg.ts'
import { migrate } from '../infra/db/migrate.ts'
import { dbEventQueue } from '../infra/db/event-queue.ts'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const EVENTS = Number(process.env['BENCH_EVENTS'] ?? 1000)
const BATCH = 50
const TOKEN = 'bench-token'
const PG_URL = process.env['SOVRA_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/sovra_test'

async function scenario(name: string, db: Db): Promise<Record<string, number>> {
  await migrate(db)
  const dir = mkdtempSync(join(tmpdir(), 'sovra-bench-ev-'))
  cpSync(join(HERE, 'fixtures', 'on-object.js'), join(dir, 'on-object.js'))
  writeFileSync(
    join(dir, 'wrangler-compat.toml'),
    '[[functions]]\nname = "sink"\nmain = "on-object.js"\nobject_triggers = [{ bucket = "documents" }]\n[functions.isolates]\nmin = 1\nmax = 2\nconcurrency = 16\n',
  )
  const { project } = loadConfig({ cwd: dir, processEnv: { SOVRA_SECRET_MINIO_WEBHOOK_TOKEN: TOKEN } })
  const host = await LocalHost.start({
    project,
    log: SILENT_LOGGER,
    metrics: createPromMetrics(),
    port: 0,
    events: { queue: dbEventQueue(db), pollMs: 50, concurrency: 16 },
  })
  const t0 = performance.now()
  const posts: Array<Promise<Response>> = []
  for (let b = 0; b < EVENTS / BATCH; b++) {
    const records = Array.from({ length: BATCH }, (_, i) => ({
      eventName: 's3:ObjectCreated:Put',
      s3: {
        bucket: { name: 'documents' },
        object: {
          key: `k/${(b * BATCH + i) % 100}/${b}`,
          eTag: `e${b}-${i}`,
          sequencer: (b * BATCH + i + 1).toString(16).padStart(16, '0'),
        },
      },
    }))
    posts.push(
      fetch(`${host.url}/_sovra/events/minio`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ Records: records }),
      }),
    )
  }
  for (const r of await Promise.all(posts)) if (!r.ok) throw new Error(`webhook answered ${r.status}`)
  for (;;) {
    const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM sovra_events WHERE status <> 'done'")
    if (Number(rows[0]?.n) === 0) break
    await new Promise((r) => setTimeout(r, 20))
  }
  const seconds = (performance.now() - t0) / 1000
  const { rows } = await db.query<{ ms: number }>(
    'SELECT EXTRACT(EPOCH FROM (updated_at - created_at)) * 1000 AS ms FROM sovra_events ORDER BY ms',
  )
  const ms = rows.map((r) => Number(r.ms))
  await host.close(2000)
  const at = (q: number) => Number((ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? 0).toFixed(1))
  const result = { events: ms.length, events_per_s: Math.round(ms.length / seconds), p50_ms: at(0.5), p95_ms: at(0.95) }
  process.stderr.write(
    `  ${name}: ${result.events_per_s} events/s, p50 ${result.p50_ms} ms, p95 ${result.p95_ms} ms (${result.events} events)\n`,
  )
  return result
}

const results: Record<string, Record<string, number>> = {}
const lite = await openPglite()
results['PGlite (embedded)'] = await scenario('PGlite', lite)
await lite.close()
const schema = `sovra_bench_${process.pid}`
const admin = new pg.Client({ connectionString: PG_URL })
await admin.connect()
await admin.query(`CREATE SCHEMA ${schema}`)
const server = await openPg(`${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`)
try {
  results['PostgreSQL 15 server'] = await scenario('PostgreSQL', server)
} finally {
  await server.close()
  await admin.query(`DROP SCHEMA ${schema} CASCADE`)
  await admin.end()
}
console.log('\n| store | events/s | p50 ms | p95 ms |\n|---|---|---|---|')
for (const [k, r] of Object.entries(results))
  console.log(`| ${k} | ${r['events_per_s']} | ${r['p50_ms']} | ${r['p95_ms']} |`)
mkdirSync(join(HERE, 'results'), { recursive: true })
writeFileSync(
  join(HERE, 'results', 'events.json'),
  `${JSON.stringify({ date: new Date().toISOString(), events: EVENTS, batch: BATCH, results }, null, 2)}\n`,
)
