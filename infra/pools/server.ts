import type { Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAdaptorServer } from '@hono/node-server'

import { SovraError } from '../../runtime/core/errors.ts'
import type { TierOrder } from '../../runtime/core/tiers.ts'
import type { PoolConfig } from '../../runtime/config/pools.ts'
import { OutcomeWindow } from '../../triggers/http/outcome-window.ts'
import { Admission } from './admission.ts'
import type { Engine } from './engine.ts'
import { createPoolApp } from './pool-app.ts'
import { createPoolMetrics } from './pool-metrics.ts'
import type { PoolLog, PoolReplica } from './replica-state.ts'

export { DEFAULT_DEADLINE_MS, type PoolLog, type PoolReplica, type ReplicaState } from './replica-state.ts'

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

/**
 * Starts a pool replica: the hono app of {@link createPoolApp} on a Node HTTP server (@hono/node-server), over one
 * engine with admission. The port listens at once; inference waits for the model to load and warm up.
 * @param options pool, tiers, replica id, engine loader and logger
 * @example
 * const server = await startPoolServer({ pool, tiers, replica: 'qa-1', load: () => loadLlamaEngine(...), log })
 * await server.ready
 */
export async function startPoolServer(options: PoolServerOptions): Promise<PoolServer> {
  const { pool, log } = options
  const inflight = new Set<Promise<unknown>>()
  const track = (work: Promise<unknown>): void => {
    inflight.add(work)
    const done = (): void => void inflight.delete(work)
    work.then(done, done)
  }
  const replica: PoolReplica = {
    pool,
    replica: options.replica,
    track,
    state: undefined,
    loadError: undefined,
    closing: false,
    admission: new Admission(pool.slots, pool.queueMax, Date.now, pool.batchSlots),
    latency: { interactive: new OutcomeWindow(2000), batch: new OutcomeWindow(2000) },
  }
  const { admission } = replica
  const app = createPoolApp(replica)
  const server = createAdaptorServer({ fetch: app.fetch }) as Server
  // The app tracks handlers and generations; this tracks the bytes, so a drained stream is also a written one.
  server.on('request', (_req, res: ServerResponse) => track(new Promise((resolve) => res.once('close', resolve))))
  server.keepAliveTimeout = 65_000

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
      replica.loadError = e as Error
      log.error(
        { pool: pool.name, replica: options.replica, err: (e as Error).message },
        'pool replica failed to load its model',
      )
      throw e
    }
    const metrics = createPoolMetrics(
      {
        pool: pool.name,
        replica: options.replica,
        digest: engine.model.sha256,
        engine: engine.kind,
        model: engine.model.name,
      },
      () => ({
        busy: admission.busy,
        slots: engine.slots,
        depth: { interactive: admission.depth('interactive'), batch: admission.depth('batch') },
        ready: !replica.closing,
      }),
    )
    replica.state = {
      pool,
      tiers: options.tiers,
      replica: options.replica,
      engine,
      admission,
      metrics,
      latency: replica.latency,
      log,
      track,
    }
    log.info(
      {
        pool: pool.name,
        replica: options.replica,
        url,
        engine: engine.kind,
        model: engine.model.path,
        sha256: engine.model.sha256,
        load_ms: Math.round(performance.now() - started),
      },
      'pool replica ready',
    )
  })()
  ready.catch(() => undefined)

  return {
    url,
    port,
    ready,
    async close(drainMs = 30_000) {
      replica.closing = true
      server.close()
      const drained = Promise.allSettled([...inflight])
      await Promise.race([drained, new Promise((r) => setTimeout(r, drainMs).unref())])
      admission.rejectAll(new SovraError('ERR_SHUTTING_DOWN', `replica ${options.replica} stopped`))
      server.closeAllConnections()
      await ready.catch(() => undefined)
      await replica.state?.engine.close()
    },
  }
}

async function warmUp(engine: Engine): Promise<void> {
  const signal = AbortSignal.timeout(60_000)
  if (engine.chat)
    await engine.chat({ messages: [{ role: 'user', content: 'ok' }], maxTokens: 1, temperature: 0, signal }, 0)
  else if (engine.embed) await engine.embed(['warm up'], signal, 0)
  else if (engine.classify) await engine.classify(['warm up'], signal, 0)
}
