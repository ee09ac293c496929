/**
 * Control plane costs: (1) the routing decision per request (selectVersion with a canary and pins; target < 50 µs);
 * (2) verifying a signed 100 MB model in the registry (signature + digest recomputed from the stored bytes,
 * streamed) vs `sha256sum` and a plain streamed sha256 of the same file, in MB/s. Writes
 * bench/results/control-plane.json.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, createWriteStream } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { sha256File } from '../infra/pools/model-file.ts'
import { generateKey } from '../infra/registry/keys.ts'
import { Registry } from '../infra/registry/registry.ts'
import { trustPolicy } from '../infra/registry/trust.ts'
import { FsBucket } from '../infra/storage/fs-bucket.ts'
import { selectVersion, type RoutingState } from '../triggers/http/version-select.ts'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const MB = Number(process.env['BENCH_CP_MB'] ?? 100)
const dir = mkdtempSync(join(tmpdir(), 'sovra-bench-cp-'))

try {
  // 1. Routing decision.
  const state: RoutingState = {
    stable: 'ask@aaaaaaaaaaaa-00000000',
    canary: { version: 'ask@bbbbbbbbbbbb-00000000', weight: 10 },
    pins: [
      { attribute: 'tenant', value: 'legal', version: 'ask@aaaaaaaaaaaa-00000000' },
      { attribute: 'header:x-beta', value: '1', version: 'ask@bbbbbbbbbbbb-00000000' },
    ],
  }
  const ids = Array.from({ length: 100_000 }, () => crypto.randomUUID())
  const attrs = { tenant: 'retail', 'header:x-beta': undefined }
  let sink = 0
  for (let i = 0; i < 200_000; i++)
    sink += selectVersion(state, { requestId: ids[i % ids.length], attributes: attrs }).version.length
  const N = 2_000_000
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < N; i++)
    sink += selectVersion(state, { requestId: ids[i % ids.length], attributes: attrs }).version.length
  const routeNs = Number(process.hrtime.bigint() - t0) / N

  // 2. Verifying a 100 MB model.
  const file = join(dir, 'model.gguf')
  await new Promise<void>((resolve, reject) => {
    const out = createWriteStream(file)
    const chunk = Buffer.alloc(1 << 20)
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 131 + 7) % 256
    let n = 0
    const write = (): void => {
      while (n < MB) {
        n++
        if (!out.write(chunk)) return void out.once('drain', write)
      }
      out.end(resolve)
    }
    out.on('error', reject)
    write()
  })
  const key = generateKey(join(dir, 'keys'), 'bench')
  const registry = new Registry(new FsBucket('sovra-artifacts', join(dir, 'buckets')))
  const { ref } = await registry.push(file, { kind: 'model', name: 'bench', createdBy: 'bench' }, key)
  const trust = trustPolicy([{ name: 'bench', public_key: key.publicKey, kinds: ['model'] }])
  const runs = { verify: [] as number[], node: [] as number[], sha256sum: [] as number[] }
  for (let r = 0; r < 3; r++) {
    let t = performance.now()
    await registry.verify(ref, 'model', trust)
    runs.verify.push(performance.now() - t)
    t = performance.now()
    await sha256File(file)
    runs.node.push(performance.now() - t)
    t = performance.now()
    const s = spawnSync('sha256sum', [file])
    if (s.status !== 0) throw new Error(`sha256sum failed: ${s.stderr}`)
    runs.sha256sum.push(performance.now() - t)
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[1] as number
  const mbs = (ms: number): number => Math.round(MB / (ms / 1000))
  const machine = `${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, node ${process.version}`
  console.log(`Machine: ${machine}; ${new Date().toISOString()}\n`)
  console.log(
    `| routing decision (canary 10%, 2 pins, ${N.toLocaleString()} calls) | ${routeNs.toFixed(0)} ns per request (target < 50,000 ns) |\n|---|---|\n`,
  )
  console.log(`| ${MB} MB model, median of 3 | ms | MB/s |\n|---|---|---|`)
  console.log(
    `| registry verify (signature + sha256 of the stored bytes, fs bucket) | ${med(runs.verify).toFixed(0)} | ${mbs(med(runs.verify))} |`,
  )
  console.log(`| Node streamed sha256 of the file | ${med(runs.node).toFixed(0)} | ${mbs(med(runs.node))} |`)
  console.log(`| sha256sum | ${med(runs.sha256sum).toFixed(0)} | ${mbs(med(runs.sha256sum))} |`)
  mkdirSync(join(HERE, 'results'), { recursive: true })
  writeFileSync(
    join(HERE, 'results', 'control-plane.json'),
    `${JSON.stringify({ date: new Date().toISOString(), machine, route_ns: routeNs, mb: MB, runs, sink: sink > 0 }, null, 2)}\n`,
  )
} finally {
  rmSync(dir, { recursive: true, force: true })
}
