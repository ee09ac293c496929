import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

import { errorToBody, isSovraError, SovraError } from '../../runtime/core/errors.ts'
import type { TierOrder } from '../../runtime/core/tiers.ts'
import type { PoolConfig } from '../../runtime/config/pools.ts'
import { Admission, type WorkClass } from './admission.ts'
import type { Engine, EngineOperation } from './engine.ts'
import { OutcomeWindow } from '../../triggers/http/outcome-window.ts'
import { createPoolMetrics, type PoolMetrics } from './pool-metrics.ts'
import { runChat, runInputs, type Served } from './serve-ops.ts'
import { ChatBodySchema, ClassifyBodySchema, EmbeddingsBodySchema, parseBody } from './requests.ts'

/** Default deadline of a request that names none. */
export const DEFAULT_DEADLINE_MS = 300_000
const MAX_BODY_BYTES = 16 * 1024 * 1024

/** The structured log a replica writes (pino's shape; tests capture it). */
export interface PoolLog {
  info(fields: Record<string, unknown>, msg: string): void
  warn(fields: Record<string, unknown>, msg: string): void
  error(fields: Record<string, unknown>, msg: string): void
}

/** How to run one replica. */
export interface PoolServerOptions {
  pool: PoolConfig
  tiers: TierOrder
  /** This replica's id, reported in every response (`<pool>-<n>` under the local scaler). */
  replica: string
  /** Loads the engine; the server answers `/healthz` 503 until it resolves and a warm-up request has run. */
  load: () => Promise<Engine>
  log: PoolLog
  hostname?: string
  port?: number
}

/** A running replica. */
export interface PoolServer {
  url: string
  port: number
  /** Resolves when the model is loaded and warm; rejects with the load error. */
  ready: Promise<void>
  /** Stops accepting, lets in-flight requests finish (at most `drainMs`), then frees the model. */
  close(drainMs?: number): Promise<void>
}

/** What the request handlers share. */
export interface ReplicaState {
  pool: PoolConfig
  tiers: TierOrder
  replica: string
  engine: Engine
  admission: Admission
  metrics: PoolMetrics
  latency: Record<WorkClass, OutcomeWindow>
  log: PoolLog
}

/**
 * Starts a pool replica: an HTTP server with an OpenAI-compatible API (`/v1/chat/completions` with SSE,
 * `/v1/embeddings`, `/v1/classify`), `/metrics`, `/healthz` and `/v1/status`, over one engine with admission.
 * @param options pool, tiers, replica id, engine loader and logger
 * @example
 * const server = await startPoolServer({ pool, tiers, replica: 'qa-1', load: () => loadLlamaEngine(...), log })
 * await server.ready
 */
export async function startPoolServer(options: PoolServerOptions): Promise<PoolServer> {
  const { pool, log } = options
  let state: ReplicaState | undefined
  let loadError: Error | undefined
  let closing = false
  const inflight = new Set<Promise<unknown>>()
  const admission = new Admission(pool.slots, pool.queueMax, Date.now, pool.batchSlots)
  const latency = { interactive: new OutcomeWindow(2000), batch: new OutcomeWindow(2000) }

  const server: Server = createServer((req, res) => {
    const p = handle(req, res).catch((e: unknown) => sendError(res, e))
    inflight.add(p)
    void p.finally(() => inflight.delete(p))
  })
  server.keepAliveTimeout = 65_000

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method === 'GET' && path === '/healthz') return health(res)
    if (req.method === 'GET' && path === '/metrics') {
      if (state === undefined) return sendJson(res, 503, { status: 'loading' })
      const { contentType, body } = await state.metrics.render()
      res.writeHead(200, { 'content-type': contentType }).end(body)
      return
    }
    if (req.method === 'GET' && path === '/v1/status') return sendJson(res, 200, status())
    const op: EngineOperation | undefined = path === '/v1/chat/completions' ? 'chat' : path === '/v1/embeddings' ? 'embed' : path === '/v1/classify' ? 'classify' : undefined
    if (op === undefined || req.method !== 'POST') {
      throw new SovraError('ERR_NOT_FOUND', `no route ${req.method} ${path}; valid: GET /healthz, GET /metrics, GET /v1/status, POST /v1/chat/completions, POST /v1/embeddings, POST /v1/classify`)
    }
    if (closing) throw new SovraError('ERR_SHUTTING_DOWN', `replica ${options.replica} is draining; send the request to another replica`)
    if (state === undefined) throw new SovraError('ERR_OVERLOADED', `replica ${options.replica} is not ready (model loading${loadError === undefined ? '' : ` failed: ${loadError.message}`})`)
    const raw = await readJson(req)
    let served: Served
    if (op === 'chat') served = await runChat(state, parseBody(ChatBodySchema, raw, 'POST /v1/chat/completions'), req, res)
    else served = await runInputs(state, op, parseBody(op === 'embed' ? EmbeddingsBodySchema : ClassifyBodySchema, raw, `POST ${path}`), req, res)
    state.latency[served.cls].add(served.totalMs)
  }

  function health(res: ServerResponse): void {
    const engine = state?.engine
    const body = {
      status: closing ? 'draining' : state !== undefined ? 'ready' : loadError !== undefined ? 'failed' : 'loading',
      pool: pool.name, replica: options.replica, engine: pool.engine, tier: pool.tier, clearance: pool.clearance, class: pool.class,
      ...(engine === undefined ? {} : { model: { name: engine.model.name, path: engine.model.path, sha256: engine.model.sha256, bytes: engine.model.bytes }, slots: engine.slots, operations: [...engine.operations] }),
      ...(loadError === undefined ? {} : { error: loadError.message }),
    }
    sendJson(res, state !== undefined && !closing ? 200 : 503, body)
  }

  function status(): Record<string, unknown> {
    // The scaler's evidence: the last minute of each class.
    const i = latency.interactive.summary(60_000)
    const b = latency.batch.summary(60_000)
    return {
      pool: pool.name, replica: options.replica, ready: state !== undefined && !closing,
      slots: pool.slots, busy: admission.busy,
      queue: { interactive: admission.depth('interactive'), batch: admission.depth('batch') },
      p95_ms: { interactive: i.p95Ms ?? null, batch: b.p95Ms ?? null },
      samples: { interactive: i.requests, batch: b.requests },
      model_sha256: state?.engine.model.sha256 ?? null,
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, options.hostname ?? '127.0.0.1', () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  const url = `http://${options.hostname ?? '127.0.0.1'}:${port}`

  const ready = (async () => {
    const started = performance.now()
    let engine: Engine
    try {
      engine = await options.load()
      await warmUp(engine)
    } catch (e) {
      loadError = e as Error
      log.error({ pool: pool.name, replica: options.replica, err: (e as Error).message }, 'pool replica failed to load its model')
      throw e
    }
    const metrics = createPoolMetrics(
      { pool: pool.name, replica: options.replica, digest: engine.model.sha256, engine: engine.kind, model: engine.model.name },
      () => ({ busy: admission.busy, slots: engine.slots, depth: { interactive: admission.depth('interactive'), batch: admission.depth('batch') }, ready: !closing }),
    )
    state = { pool, tiers: options.tiers, replica: options.replica, engine, admission, metrics, latency, log }
    log.info({ pool: pool.name, replica: options.replica, url, engine: engine.kind, model: engine.model.path, sha256: engine.model.sha256, load_ms: Math.round(performance.now() - started) }, 'pool replica ready')
  })()
  ready.catch(() => undefined)

  return {
    url,
    port,
    ready,
    async close(drainMs = 30_000) {
      closing = true
      server.close()
      const drained = Promise.allSettled([...inflight])
      await Promise.race([drained, new Promise((r) => setTimeout(r, drainMs).unref())])
      admission.rejectAll(new SovraError('ERR_SHUTTING_DOWN', `replica ${options.replica} stopped`))
      server.closeAllConnections()
      await ready.catch(() => undefined)
      await state?.engine.close()
    },
  }
}

async function warmUp(engine: Engine): Promise<void> {
  const signal = AbortSignal.timeout(60_000)
  if (engine.chat) await engine.chat({ messages: [{ role: 'user', content: 'ok' }], maxTokens: 1, temperature: 0, signal }, 0)
  else if (engine.embed) await engine.embed(['warm up'], signal, 0)
  else if (engine.classify) await engine.classify(['warm up'], signal, 0)
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) throw new SovraError('ERR_BODY_TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`)
    chunks.push(chunk as Buffer)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  try {
    return JSON.parse(text)
  } catch {
    throw new SovraError('ERR_BAD_REQUEST', `expected a JSON body, received ${JSON.stringify(text.slice(0, 80))}${text.length > 80 ? '...' : ''}`)
  }
}

/**
 * Sends a JSON response.
 * @param res the response
 * @param status HTTP status
 * @param body any JSON value
 * @param headers extra headers
 */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body))
}

/**
 * Sends an error as sovra's JSON error body (with Retry-After for 429/503 that carry `retry_after`); after SSE
 * headers went out, as a final `data: {"error":...}` event.
 * @param res the response
 * @param error what was thrown
 */
export function sendError(res: ServerResponse, error: unknown): void {
  const { status, body } = errorToBody(isSovraError(error) ? error : new SovraError('ERR_INTERNAL', `replica error: ${(error as Error).message}`))
  if (res.headersSent) {
    if (!res.writableEnded) res.end(`data: ${JSON.stringify(body)}\n\ndata: [DONE]\n\n`)
    return
  }
  const retry = body.error['retry_after']
  sendJson(res, status, body, typeof retry === 'number' ? { 'retry-after': String(retry) } : {})
}
