import { Hono, type Context } from 'hono'

import { SovraError } from '../../runtime/core/errors.ts'
import { errorReply, jsonReply } from './replies.ts'
import type { PoolReplica, ReplicaState } from './replica-state.ts'
import { ChatBodySchema, ClassifyBodySchema, EmbeddingsBodySchema, parseBody } from './requests.ts'
import { runChat, runInputs } from './serve-ops.ts'

/** The largest request body a replica reads. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024
const ROUTES =
  'GET /healthz, GET /metrics, GET /v1/status, POST /v1/chat/completions, POST /v1/embeddings, POST /v1/classify'

/**
 * Creates a pool replica's HTTP app (hono): an OpenAI-compatible API (`POST /v1/chat/completions` with SSE,
 * `POST /v1/embeddings`, `POST /v1/classify`), `GET /metrics`, `GET /healthz` and `GET /v1/status`. Any other
 * method or path answers 404 ERR_NOT_FOUND naming the valid routes; errors answer sovra's JSON error body.
 * @param replica the replica it serves; its server sets `state` once the model is warm and `closing` on shutdown
 * @example
 * const app = createPoolApp(replica)
 * const res = await app.request('/healthz')
 */
export function createPoolApp(replica: PoolReplica): Hono {
  const app = new Hono()
  app.use(async (c, next) => {
    // hono answers HEAD with the GET route; a replica has never served HEAD, so it stays a 404 like other methods.
    if (c.req.method === 'HEAD') return notFound(c)
    const work = next()
    replica.track(work)
    await work
  })
  app.get('/healthz', () => health(replica))
  app.get('/metrics', async () => {
    if (replica.state === undefined) return jsonReply(503, { status: 'loading' })
    const { contentType, body } = await replica.state.metrics.render()
    return new Response(body, { status: 200, headers: { 'content-type': contentType } })
  })
  app.get('/v1/status', () => jsonReply(200, status(replica)))
  app.post('/v1/chat/completions', async (c) => {
    const state = ready(replica)
    const body = parseBody(ChatBodySchema, await readJson(c.req.raw), 'POST /v1/chat/completions')
    return runChat(state, body, c.req.raw.signal)
  })
  app.post('/v1/embeddings', async (c) => {
    const state = ready(replica)
    return runInputs(
      state,
      'embed',
      parseBody(EmbeddingsBodySchema, await readJson(c.req.raw), 'POST /v1/embeddings'),
      c.req.raw.signal,
    )
  })
  app.post('/v1/classify', async (c) => {
    const state = ready(replica)
    return runInputs(
      state,
      'classify',
      parseBody(ClassifyBodySchema, await readJson(c.req.raw), 'POST /v1/classify'),
      c.req.raw.signal,
    )
  })
  app.notFound(notFound)
  app.onError((e) => errorReply(e))
  return app
}

function notFound(c: Context): Response {
  return errorReply(new SovraError('ERR_NOT_FOUND', `no route ${c.req.method} ${c.req.path}; valid: ${ROUTES}`))
}

/** The loaded replica, or why inference is refused now (draining, still loading, failed to load). */
function ready(replica: PoolReplica): ReplicaState {
  if (replica.closing)
    throw new SovraError(
      'ERR_SHUTTING_DOWN',
      `replica ${replica.replica} is draining; send the request to another replica`,
    )
  const { state, loadError } = replica
  if (state === undefined)
    throw new SovraError(
      'ERR_OVERLOADED',
      `replica ${replica.replica} is not ready (model loading${loadError === undefined ? '' : ` failed: ${loadError.message}`})`,
    )
  return state
}

function health(replica: PoolReplica): Response {
  const { pool, state, loadError, closing } = replica
  const engine = state?.engine
  const body = {
    status: closing ? 'draining' : state !== undefined ? 'ready' : loadError !== undefined ? 'failed' : 'loading',
    pool: pool.name,
    replica: replica.replica,
    engine: pool.engine,
    tier: pool.tier,
    clearance: pool.clearance,
    class: pool.class,
    ...(engine === undefined
      ? {}
      : {
          model: {
            name: engine.model.name,
            path: engine.model.path,
            sha256: engine.model.sha256,
            bytes: engine.model.bytes,
            ...(engine.model.files === undefined ? {} : { files: engine.model.files }),
          },
          slots: engine.slots,
          operations: [...engine.operations],
        }),
    ...(loadError === undefined ? {} : { error: loadError.message }),
  }
  return jsonReply(state !== undefined && !closing ? 200 : 503, body)
}

function status(replica: PoolReplica): Record<string, unknown> {
  const { pool, admission, latency, state } = replica
  // The scaler's evidence: the last minute of each class.
  const i = latency.interactive.summary(60_000)
  const b = latency.batch.summary(60_000)
  return {
    pool: pool.name,
    replica: replica.replica,
    ready: state !== undefined && !replica.closing,
    slots: pool.slots,
    busy: admission.busy,
    queue: { interactive: admission.depth('interactive'), batch: admission.depth('batch') },
    p95_ms: { interactive: i.p95Ms ?? null, batch: b.p95Ms ?? null },
    samples: { interactive: i.requests, batch: b.requests },
    model_sha256: state?.engine.model.sha256 ?? null,
  }
}

/** Reads a JSON body of at most {@link MAX_BODY_BYTES}, counting as it streams in. */
async function readJson(req: Request): Promise<unknown> {
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = req.body?.getReader()
  for (let r = await reader?.read(); r !== undefined && !r.done; r = await reader?.read()) {
    size += r.value.byteLength
    if (size > MAX_BODY_BYTES) {
      await reader?.cancel()
      throw new SovraError('ERR_BODY_TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`)
    }
    chunks.push(r.value)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  try {
    return JSON.parse(text)
  } catch {
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `expected a JSON body, received ${JSON.stringify(text.slice(0, 80))}${text.length > 80 ? '...' : ''}`,
    )
  }
}
