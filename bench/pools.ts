/**
 * Inference pools on the built-in tiny models (generated into a temp state folder, never downloaded), with real
 * `sovra pool serve` replica child processes (LocalReplica) driven over HTTP:
 *  1. chat tokens/s through a replica vs node-llama-cpp called directly in this process (same GGUF, threads 1,
 *     same prompts, temperature 0), 1 stream (slots 1) and 2 concurrent streams (slots 2 / 2 sequences);
 *  2. interactive p50/p95 alone vs while batch clients saturate the same replica (slots 3), with the default
 *     interactive reserve (batch_slots 2) and without it (batch_slots 3), plus batch tokens/s under load;
 *  3. embeddings/s by batch size through an onnx replica vs loadOnnxEngine in this process;
 *  4. replica start to ready (spawn -> /healthz 200) for llama and onnx: probe with an empty cache (fresh state
 *     folder, model files already generated), probe with a warm cache, no probe.
 * Direct and pool phases never run at the same time. Prints Markdown tables; writes bench/results/pools.json.
 *
 * Env: BENCH_POOL_REQUESTS (chat requests per throughput scenario, default 48), BENCH_POOL_MAX_TOKENS (128),
 * BENCH_POOL_INTERACTIVE (interactive requests per latency run, 30), BENCH_POOL_BATCH_CLIENTS (4),
 * BENCH_POOL_EMBED_SECONDS (per batch size and side, 2), BENCH_POOL_EMBED_BATCHES ("1,8,32,128"),
 * BENCH_POOL_START_RUNS (3), BENCH_POOL_WARMUP (warm-up requests per stream / batch size, 2), BENCH_POOL_SECTIONS
 * (which of 1-4 to run, "1,2,3,4").
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, platform, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { LlamaContextSequence } from 'node-llama-cpp'
import { materializeTinyModel } from '../infra/pools/load-engine.ts'
import { LocalReplica } from '../infra/pools/replica-process.ts'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const int = (name: string, fallback: number): number => {
  const n = Number(process.env[name] ?? fallback)
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`${name}: expected a positive integer, received ${JSON.stringify(process.env[name])}`)
  return n
}
const REQUESTS = int('BENCH_POOL_REQUESTS', 48)
const MAX_TOKENS = int('BENCH_POOL_MAX_TOKENS', 128)
const INTERACTIVE = int('BENCH_POOL_INTERACTIVE', 30)
const BATCH_CLIENTS = int('BENCH_POOL_BATCH_CLIENTS', 4)
const EMBED_SECONDS = Number(process.env['BENCH_POOL_EMBED_SECONDS'] ?? 2)
const EMBED_BATCHES = (process.env['BENCH_POOL_EMBED_BATCHES'] ?? '1,8,32,128').split(',').map(Number)
const START_RUNS = int('BENCH_POOL_START_RUNS', 3)
const WARMUP = int('BENCH_POOL_WARMUP', 2)
const SECTIONS = new Set((process.env['BENCH_POOL_SECTIONS'] ?? '1,2,3,4').split(',').map((x) => x.trim()))
const INTERACTIVE_MAX_TOKENS = 16

const t0 = performance.now()
const root = mkdtempSync(join(tmpdir(), 'sovra-bench-pools-'))
const state = join(root, 'state')
const models = join(state, 'models')
const configFile = join(root, 'wrangler-compat.toml')
const live = new Set<LocalReplica>()
const log = (line: string): void => void process.stderr.write(`  ${line}\n`)

// ---------------------------------------------------------------------------------------------------------------
// Setup: the tiny models and one config with every pool the bench starts.

const llamaPath = await materializeTinyModel('tiny:llama', models)
const embedPath = await materializeTinyModel('tiny:embed', models)
const pool = (name: string, fields: string): string =>
  `[[pools]]\nname = "${name}"\ntier = "internal"\nthreads = 1\n${fields}\n`
const llama = (slots: number, extra = ''): string =>
  `engine = "llama"\nmodel = "tiny:llama"\nslots = ${slots}\ncontext_size = 2048\n${extra}`
writeFileSync(
  configFile,
  [
    'name = "bench-pools"\n',
    pool('tps-1', llama(1, 'probe = false')),
    // One context with 2 sequences, as on the direct side (the default batch_slots would give the reserve its own context and thread).
    pool('tps-2', llama(2, 'probe = false\nbatch_slots = 2')),
    pool('mixed-reserve', llama(3, 'probe = false\nqueue_max = 64')),
    pool('mixed-noreserve', llama(3, 'probe = false\nqueue_max = 64\nbatch_slots = 3')),
    pool('embed', 'engine = "onnx"\nmodel = "tiny:embed"\nslots = 1\nprobe = false'),
    pool('start-llama-probe', llama(1, 'probe = true')),
    pool('start-llama-noprobe', llama(1, 'probe = false')),
    pool('start-onnx-probe', 'engine = "onnx"\nmodel = "tiny:embed"\nslots = 1\nprobe = true'),
    pool('start-onnx-noprobe', 'engine = "onnx"\nmodel = "tiny:embed"\nslots = 1\nprobe = false'),
  ].join('\n'),
)

/** Kills what is left (Ctrl-C): replicas also exit by themselves within 2 s once this process is gone. */
function hardCleanup(): void {
  for (const r of live)
    if (r.pid !== undefined)
      try {
        process.kill(r.pid, 'SIGKILL')
      } catch {
        /* gone */
      }
  rmSync(root, { recursive: true, force: true })
}
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    hardCleanup()
    process.exit(130)
  })

interface Started {
  replica: LocalReplica
  url: string
  ms: number
  loadMs: number | undefined
}

/** Spawns `sovra pool serve` for a pool and waits for /healthz 200 (LocalReplica polls every 10 ms). */
async function startReplica(name: string, stateDir = state): Promise<Started> {
  let settle: () => void = () => undefined
  const settled = new Promise<void>((resolve) => {
    settle = resolve
  })
  let loadMs: number | undefined
  const replica = new LocalReplica({
    id: `${name}-1`,
    pool: name,
    configFile,
    env: undefined,
    stateDir,
    pollMs: 10,
    onSettled: () => settle(),
    onLog: (line) => {
      if (line.includes('"pool replica ready"')) loadMs = (JSON.parse(line) as { load_ms?: number }).load_ms
    },
  })
  live.add(replica)
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([
    settled,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`replica ${name} not ready after 120 s`)), 120_000)
    }),
  ])
  clearTimeout(timer)
  if (replica.state !== 'ready') throw new Error(`replica ${name} failed to start: ${replica.failure ?? replica.state}`)
  return { replica, url: replica.url!, ms: replica.readyAt! - replica.startedAt, loadMs }
}

async function stopReplica(r: LocalReplica): Promise<void> {
  await r.stop(0, 5000)
  live.delete(r)
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers.

const WORDS = [
  'the',
  'bank',
  'report',
  'risk',
  'loan',
  'audit',
  'policy',
  'month',
  'end',
  'data',
  'model',
  'answer',
  'question',
  'user',
  'system',
  'hello',
  'world',
  'yes',
  'no',
  'true',
]
/** A deterministic ~8-word sentence. */
const sentence = (i: number): string =>
  Array.from({ length: 8 }, (_, k) => WORDS[(i * 7 + k * 3 + ((i * k) % 5)) % WORDS.length]).join(' ')
const prompt = (i: number): string => `Question ${i}: ${sentence(i)}?`

const at = (sorted: number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0
const median = (xs: number[]): number =>
  at(
    [...xs].sort((a, b) => a - b),
    0.5,
  )
const r1 = (x: number): number => Number(x.toFixed(1))
const r2 = (x: number): number => Number(x.toFixed(2))

interface ChatResult {
  ms: number
  tokens: number
  text: string
  queueMs: number
}

async function chat(
  url: string,
  content: string,
  maxTokens: number,
  cls: 'interactive' | 'batch',
): Promise<ChatResult> {
  const start = performance.now()
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      messages: [{ role: 'user', content }],
      max_tokens: maxTokens,
      temperature: 0,
      seed: 1,
      class: cls,
      tier: 'internal',
    }),
  })
  if (!res.ok) throw new Error(`chat answered ${res.status}: ${await res.text()}`)
  const body = (await res.json()) as {
    choices: Array<{ message: { content: string } }>
    usage: { completion_tokens: number }
    sovra: { timings: { queue_ms: number } }
  }
  return {
    ms: performance.now() - start,
    tokens: body.usage.completion_tokens,
    text: body.choices[0]?.message.content ?? '',
    queueMs: body.sovra.timings.queue_ms,
  }
}

/** Splits `n` prompts over `streams` clients (client c gets prompts c, c+streams, ...). */
const shares = (n: number, streams: number, offset: number): number[][] =>
  Array.from({ length: streams }, (_, c) =>
    Array.from({ length: Math.ceil((n - c) / streams) }, (_, k) => offset + c + k * streams),
  )

interface Throughput {
  tokens: number
  seconds: number
  tok_s: number
  texts: string[]
}

/** Runs the measured prompts as `streams` concurrent sequential clients; `one(stream, i)` serves prompt i. */
async function drive(
  streams: number,
  one: (stream: number, i: number) => Promise<{ tokens: number; text: string }>,
): Promise<Throughput> {
  await Promise.all(
    shares(WARMUP * streams, streams, 10_000).map((ids, s) =>
      (async () => {
        for (const i of ids) await one(s, i)
      })(),
    ),
  )
  const texts: string[] = new Array<string>(REQUESTS).fill('')
  let tokens = 0
  const start = performance.now()
  await Promise.all(
    shares(REQUESTS, streams, 0).map((ids, s) =>
      (async () => {
        for (const i of ids) {
          const out = await one(s, i)
          tokens += out.tokens
          texts[i] = out.text
        }
      })(),
    ),
  )
  const seconds = (performance.now() - start) / 1000
  return { tokens, seconds: r2(seconds), tok_s: Math.round(tokens / seconds), texts }
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Tokens/s: pool replica vs node-llama-cpp directly.

async function directThroughput(streamsList: number[]): Promise<Map<number, Throughput>> {
  const { getLlama, LlamaChat, LlamaLogLevel } = await import('node-llama-cpp')
  const lib = await getLlama({ gpu: false, build: 'never', maxThreads: 1, logLevel: LlamaLogLevel.error })
  const model = await lib.loadModel({ modelPath: llamaPath })
  const out = new Map<number, Throughput>()
  try {
    for (const streams of streamsList) {
      const context = await model.createContext({ contextSize: 2048, sequences: streams, threads: 1 })
      try {
        const sequences: LlamaContextSequence[] = Array.from({ length: streams }, () => context.getSequence())
        const generate = async (
          s: number,
          text: string,
          maxTokens: number,
        ): Promise<{ tokens: number; text: string }> => {
          const sequence = sequences[s]!
          const session = new LlamaChat({ contextSequence: sequence, autoDisposeSequence: false })
          const before = sequence.tokenMeter.getState()
          try {
            const res = await session.generateResponse(
              [
                { type: 'user', text },
                { type: 'model', response: [] },
              ],
              { maxTokens, temperature: 0, seed: 1 },
            )
            return { tokens: sequence.tokenMeter.diff(before).usedOutputTokens, text: res.response }
          } finally {
            session.dispose({ disposeSequence: false })
          }
        }
        // The replica runs one 1-token request on slot 0 before it reports ready; mirrored here because the KV cells
        // it leaves behind change float summation order, which flips near-tie greedy picks of the random-weight model.
        await generate(0, 'ok', 1)
        const result = await drive(streams, (s, i) => generate(s, prompt(i), MAX_TOKENS))
        out.set(streams, result)
        log(`direct, ${streams} stream(s): ${result.tok_s} tok/s (${result.tokens} tokens in ${result.seconds} s)`)
      } finally {
        await context.dispose()
      }
    }
  } finally {
    await model.dispose()
    await lib.dispose()
  }
  return out
}

async function poolThroughput(streams: number): Promise<Throughput> {
  const { replica, url } = await startReplica(`tps-${streams}`)
  try {
    const result = await drive(streams, (_s, i) => chat(url, prompt(i), MAX_TOKENS, 'interactive'))
    log(`pool, ${streams} stream(s): ${result.tok_s} tok/s (${result.tokens} tokens in ${result.seconds} s)`)
    return result
  } finally {
    await stopReplica(replica)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Interactive latency alone vs under batch load.

interface Latency {
  p50_ms: number
  p95_ms: number
  max_ms: number
  queue_p95_ms: number
}

async function interactiveRun(url: string, offset: number): Promise<Latency> {
  const ms: number[] = []
  const queue: number[] = []
  for (let i = 0; i < INTERACTIVE; i++) {
    const r = await chat(url, prompt(offset + i), INTERACTIVE_MAX_TOKENS, 'interactive')
    ms.push(r.ms)
    queue.push(r.queueMs)
  }
  ms.sort((a, b) => a - b)
  queue.sort((a, b) => a - b)
  return {
    p50_ms: r1(at(ms, 0.5)),
    p95_ms: r1(at(ms, 0.95)),
    max_ms: r1(ms.at(-1) ?? 0),
    queue_p95_ms: r1(at(queue, 0.95)),
  }
}

async function mixedScenario(name: string, batchSlots: number): Promise<Record<string, unknown>> {
  const { replica, url } = await startReplica(name)
  try {
    for (let i = 0; i < WARMUP; i++) await chat(url, prompt(20_000 + i), INTERACTIVE_MAX_TOKENS, 'interactive')
    const alone = await interactiveRun(url, 0)
    let stop = false
    let batchTokens = 0
    let batchRequests = 0
    const batchStart = performance.now()
    const clients = Array.from({ length: BATCH_CLIENTS }, (_, c) =>
      (async () => {
        for (let k = 0; !stop; k++) {
          const r = await chat(url, prompt(30_000 + c * 1000 + k), MAX_TOKENS, 'batch')
          batchTokens += r.tokens
          batchRequests++
        }
      })(),
    )
    const failed = Promise.all(clients).then(() => undefined)
    // Measure only once batch work holds every slot it may take.
    for (;;) {
      const s = (await (await fetch(`${url}/v1/status`)).json()) as { busy: number }
      if (s.busy >= Math.min(batchSlots, BATCH_CLIENTS)) break
      await Promise.race([failed, new Promise((r) => setTimeout(r, 5))])
    }
    let loaded: Latency
    try {
      loaded = await interactiveRun(url, 0)
    } finally {
      stop = true
      await Promise.allSettled(clients)
    }
    await failed
    const batchSeconds = (performance.now() - batchStart) / 1000
    const result = {
      batch_slots: batchSlots,
      alone,
      loaded,
      p95_ratio: r2(loaded.p95_ms / alone.p95_ms),
      batch_tok_s: Math.round(batchTokens / batchSeconds),
      batch_requests: batchRequests,
      batch_seconds: r2(batchSeconds),
    }
    log(
      `${name}: interactive p95 alone ${alone.p95_ms} ms, loaded ${loaded.p95_ms} ms (x${result.p95_ratio}); batch ${result.batch_tok_s} tok/s`,
    )
    return result
  } finally {
    await stopReplica(replica)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Embeddings by batch size.

interface EmbedRate {
  requests: number
  ms_per_request: number
  inputs_s: number
}

async function timeBox(batch: number, one: (texts: string[]) => Promise<void>): Promise<EmbedRate> {
  const texts = (k: number): string[] => Array.from({ length: batch }, (_, j) => sentence(k * batch + j))
  for (let k = 0; k < WARMUP; k++) await one(texts(100_000 + k))
  let n = 0
  const start = performance.now()
  while (n < 3 || performance.now() - start < EMBED_SECONDS * 1000) await one(texts(n++))
  const seconds = (performance.now() - start) / 1000
  return { requests: n, ms_per_request: r2((seconds * 1000) / n), inputs_s: Math.round((n * batch) / seconds) }
}

async function directEmbeddings(): Promise<Map<number, EmbedRate>> {
  const { loadOnnxEngine } = await import('../infra/pools/engines/onnx.ts')
  const engine = await loadOnnxEngine({ modelPath: embedPath, threads: 1, slots: 1 })
  const out = new Map<number, EmbedRate>()
  try {
    for (const b of EMBED_BATCHES) {
      out.set(b, await timeBox(b, async (texts) => void (await engine.embed!(texts, AbortSignal.timeout(60_000), 0))))
      log(`direct onnx, batch ${b}: ${out.get(b)!.inputs_s} inputs/s`)
    }
  } finally {
    await engine.close()
  }
  return out
}

async function poolEmbeddings(): Promise<Map<number, EmbedRate>> {
  const { replica, url } = await startReplica('embed')
  const out = new Map<number, EmbedRate>()
  try {
    for (const b of EMBED_BATCHES) {
      out.set(
        b,
        await timeBox(b, async (input) => {
          const res = await fetch(`${url}/v1/embeddings`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ input }),
          })
          if (!res.ok) throw new Error(`embeddings answered ${res.status}: ${await res.text()}`)
          const body = (await res.json()) as { data: unknown[] }
          if (body.data.length !== input.length)
            throw new Error(`embeddings returned ${body.data.length} vectors for ${input.length} inputs`)
        }),
      )
      log(`pool onnx, batch ${b}: ${out.get(b)!.inputs_s} inputs/s`)
    }
  } finally {
    await stopReplica(replica)
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Replica start to ready.

interface StartRow {
  engine: string
  variant: string
  runs_ms: number[]
  median_ms: number
  median_load_ms: number | undefined
}

async function startTimes(engine: 'llama' | 'onnx'): Promise<StartRow[]> {
  const rows: StartRow[] = []
  const once = async (name: string, dir: string): Promise<Started> => {
    const s = await startReplica(name, dir)
    await stopReplica(s.replica)
    return s
  }
  const record = (variant: string, runs: Started[]): void => {
    const loads = runs.flatMap((s) => (s.loadMs === undefined ? [] : [s.loadMs]))
    const row = {
      engine,
      variant,
      runs_ms: runs.map((s) => s.ms),
      median_ms: median(runs.map((s) => s.ms)),
      median_load_ms: loads.length > 0 ? median(loads) : undefined,
    }
    rows.push(row)
    log(`start ${engine}, ${variant}: median ${row.median_ms} ms (${row.runs_ms.join(', ')})`)
  }
  // Cold: a fresh state folder per run (no probe marker), with the model files already generated in it.
  const cold: Started[] = []
  let lastDir = ''
  for (let i = 0; i < START_RUNS; i++) {
    lastDir = join(root, `start-${engine}-${i}`)
    cpSync(models, join(lastDir, 'models'), { recursive: true })
    cold.push(await once(`start-${engine}-probe`, lastDir))
  }
  record('probe = true, empty probe cache', cold)
  const warm: Started[] = []
  for (let i = 0; i < START_RUNS; i++) warm.push(await once(`start-${engine}-probe`, lastDir))
  record('probe = true, probe cache warm', warm)
  const none: Started[] = []
  for (let i = 0; i < START_RUNS; i++) none.push(await once(`start-${engine}-noprobe`, lastDir))
  record('probe = false', none)
  return rows
}

// ---------------------------------------------------------------------------------------------------------------
// Run, print, write.

const cpu = cpus()
const machine = {
  cpu: cpu[0]?.model ?? 'unknown',
  cores: cpu.length,
  node: process.version,
  os: `${platform()} ${release()}`,
}
const date = new Date().toISOString()
try {
  const out: string[] = [
    `\nMachine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.os}; date ${date}`,
  ]
  const results: Record<string, unknown> = {}
  if (SECTIONS.has('1')) {
    process.stderr.write('1. chat tokens/s: pool replica vs node-llama-cpp directly\n')
    const direct = await directThroughput([1, 2])
    const throughput = []
    for (const streams of [1, 2]) {
      const p = await poolThroughput(streams)
      const d = direct.get(streams)!
      const identical = p.texts.filter((t, i) => t === d.texts[i]).length
      throughput.push({
        streams,
        slots: streams,
        requests: REQUESTS,
        max_tokens: MAX_TOKENS,
        direct: { tokens: d.tokens, seconds: d.seconds, tok_s: d.tok_s },
        pool: { tokens: p.tokens, seconds: p.seconds, tok_s: p.tok_s },
        ratio: r2(p.tok_s / d.tok_s),
        identical_texts: identical,
      })
    }
    results['throughput'] = throughput
    out.push(
      `\n**Chat tokens/s, pool replica (HTTP, child process) vs node-llama-cpp in-process** (tiny GGUF, threads 1, temperature 0, max_tokens ${MAX_TOKENS}, ${REQUESTS} requests after ${WARMUP} warm-up per stream; target >= 0.9x)\n`,
    )
    out.push(
      '| scenario | direct tok/s | pool tok/s | pool/direct | completion tokens (direct / pool) | identical texts |\n|---|---|---|---|---|---|',
    )
    for (const t of throughput)
      out.push(
        `| ${t.streams === 1 ? '1 stream (slots 1)' : `${t.streams} concurrent streams (slots ${t.slots})`} | ${t.direct.tok_s} | ${t.pool.tok_s} | ${t.ratio}x | ${t.direct.tokens} / ${t.pool.tokens} | ${t.identical_texts}/${t.requests} |`,
      )
  }
  if (SECTIONS.has('2')) {
    process.stderr.write('2. interactive latency under batch load\n')
    const mixed = [await mixedScenario('mixed-reserve', 2), await mixedScenario('mixed-noreserve', 3)]
    results['interactive'] = mixed
    out.push(
      `\n**Interactive latency alone vs with ${BATCH_CLIENTS} batch clients saturating the replica** (slots 3, threads 1; ${INTERACTIVE} sequential interactive requests, max_tokens ${INTERACTIVE_MAX_TOKENS}; batch max_tokens ${MAX_TOKENS}; target p95 <= 1.5x)\n`,
    )
    out.push(
      '| batch_slots | alone p50 / p95 ms | loaded p50 / p95 ms | loaded max ms | loaded queue p95 ms | p95 loaded/alone | batch tok/s (loaded) |\n|---|---|---|---|---|---|---|',
    )
    for (const m of mixed) {
      const a = m['alone'] as Latency
      const l = m['loaded'] as Latency
      out.push(
        `| ${m['batch_slots']}${m['batch_slots'] === 2 ? ' (1 reserved, default)' : ' (no reserve)'} | ${a.p50_ms} / ${a.p95_ms} | ${l.p50_ms} / ${l.p95_ms} | ${l.max_ms} | ${l.queue_p95_ms} | ${m['p95_ratio']}x | ${m['batch_tok_s']} |`,
      )
    }
  }
  if (SECTIONS.has('3')) {
    process.stderr.write('3. embeddings by batch size\n')
    const directEmbed = await directEmbeddings()
    const poolEmbed = await poolEmbeddings()
    const embeddings = EMBED_BATCHES.map((b) => ({
      batch: b,
      pool: poolEmbed.get(b)!,
      direct: directEmbed.get(b)!,
      ratio: r2(poolEmbed.get(b)!.inputs_s / directEmbed.get(b)!.inputs_s),
    }))
    results['embeddings'] = embeddings
    out.push(
      `\n**Embeddings by batch size, onnx replica (HTTP) vs loadOnnxEngine in-process** (tiny:embed, threads 1, slots 1, ~8-word sentences, ~${EMBED_SECONDS} s each)\n`,
    )
    out.push(
      '| batch | pool ms/request | pool inputs/s | direct ms/request | direct inputs/s | pool/direct |\n|---|---|---|---|---|---|',
    )
    for (const e of embeddings)
      out.push(
        `| ${e.batch} | ${e.pool.ms_per_request} | ${e.pool.inputs_s} | ${e.direct.ms_per_request} | ${e.direct.inputs_s} | ${e.ratio}x |`,
      )
  }
  if (SECTIONS.has('4')) {
    process.stderr.write('4. replica start to ready\n')
    const start = [...(await startTimes('llama')), ...(await startTimes('onnx'))]
    results['start'] = start
    out.push(
      `\n**Replica start to ready: spawn \`sovra pool serve\` -> /healthz 200** (median of ${START_RUNS}; "load" is the replica's own load_ms: probe + model load + warm-up request)\n`,
    )
    out.push('| engine | variant | median ms | median load ms | runs ms |\n|---|---|---|---|---|')
    for (const s of start)
      out.push(`| ${s.engine} | ${s.variant} | ${s.median_ms} | ${s.median_load_ms ?? '-'} | ${s.runs_ms.join(', ')} |`)
  }
  const runtime = r1((performance.now() - t0) / 1000)
  out.push(`\nTotal runtime: ${runtime} s`)
  console.log(out.join('\n'))
  mkdirSync(join(HERE, 'results'), { recursive: true })
  const settings = {
    sections: [...SECTIONS],
    requests: REQUESTS,
    max_tokens: MAX_TOKENS,
    interactive: INTERACTIVE,
    interactive_max_tokens: INTERACTIVE_MAX_TOKENS,
    batch_clients: BATCH_CLIENTS,
    embed_seconds: EMBED_SECONDS,
    embed_batches: EMBED_BATCHES,
    start_runs: START_RUNS,
    warmup: WARMUP,
  }
  writeFileSync(
    join(HERE, 'results', 'pools.json'),
    `${JSON.stringify({ date, machine, settings, runtime_s: runtime, ...results }, null, 2)}\n`,
  )
} finally {
  await Promise.allSettled([...live].map((r) => stopReplica(r)))
  rmSync(root, { recursive: true, force: true })
}
