/**
 * Bucket adapters' put/get throughput for 4 KiB and 4 MiB objects on fs and on s3rver (an S3-compatible server on
 * 127.0.0.1; MinIO when SOVRA_TEST_S3_ENDPOINT is set). Part of `npm run bench`; writes bench/results/buckets.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Bucket } from '../runtime/core/ports.ts'
import { FsBucket } from '../infra/storage/fs-bucket.ts'
import { createS3Client, S3Bucket } from '../infra/storage/s3-bucket.ts'
import { startTestS3 } from '../test/support/s3.ts'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const SIZES = [
  { name: '4 KiB', bytes: 4096, ops: 300 },
  { name: '4 MiB', bytes: 4 * 1024 * 1024, ops: 15 },
]

async function measure(
  bucket: Bucket,
  bytes: number,
  ops: number,
): Promise<{ put_ops_s: number; get_ops_s: number; put_mib_s: number; get_mib_s: number }> {
  const body = new Uint8Array(bytes).map((_, i) => i % 251)
  let t = performance.now()
  for (let i = 0; i < ops; i++) await bucket.put(`bench/${bytes}/${i}`, body)
  const put = (performance.now() - t) / 1000
  t = performance.now()
  for (let i = 0; i < ops; i++) await (await bucket.get(`bench/${bytes}/${i}`))?.arrayBuffer()
  const get = (performance.now() - t) / 1000
  const mib = (bytes * ops) / 2 ** 20
  return {
    put_ops_s: Math.round(ops / put),
    get_ops_s: Math.round(ops / get),
    put_mib_s: Number((mib / put).toFixed(1)),
    get_mib_s: Number((mib / get).toFixed(1)),
  }
}

const root = mkdtempSync(join(tmpdir(), 'sovra-bench-fs-'))
const s3 = await startTestS3(['bench'])
const results: Record<string, Record<string, unknown>> = {}
try {
  const adapters: Array<[string, Bucket]> = [
    ['fs', new FsBucket('bench', root)],
    [s3.external ? 's3 (MinIO)' : 's3 (s3rver)', new S3Bucket('bench', createS3Client(s3.settings))],
  ]
  for (const [name, bucket] of adapters) {
    for (const size of SIZES) {
      const r = await measure(bucket, size.bytes, size.ops)
      results[`${name} ${size.name}`] = r
      process.stderr.write(
        `  ${name} ${size.name}: put ${r.put_ops_s} ops/s (${r.put_mib_s} MiB/s), get ${r.get_ops_s} ops/s (${r.get_mib_s} MiB/s)\n`,
      )
    }
  }
} finally {
  await s3.stop()
  rmSync(root, { recursive: true, force: true })
}
console.log('\n| adapter, size | put ops/s | put MiB/s | get ops/s | get MiB/s |\n|---|---|---|---|---|')
for (const [k, r] of Object.entries(results))
  console.log(`| ${k} | ${r['put_ops_s']} | ${r['put_mib_s']} | ${r['get_ops_s']} | ${r['get_mib_s']} |`)
mkdirSync(join(HERE, 'results'), { recursive: true })
writeFileSync(
  join(HERE, 'results', 'buckets.json'),
  `${JSON.stringify({ date: new Date().toISOString(), results }, null, 2)}\n`,
)
