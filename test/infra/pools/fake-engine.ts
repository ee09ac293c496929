import { Admission } from '../../../infra/pools/admission.ts'
import type { Engine, EngineChatParams } from '../../../infra/pools/engine.ts'
import { createPoolMetrics } from '../../../infra/pools/pool-metrics.ts'
import type { PoolLog, PoolReplica } from '../../../infra/pools/replica-state.ts'
import { OutcomeWindow } from '../../../triggers/http/outcome-window.ts'
import type { PoolConfig } from '../../../runtime/config/pools.ts'
import { TIERS } from '../../support/pools.ts'

/** A chat the fake engine holds until the test finishes it (or its signal aborts it). */
export interface HeldChat {
  params: EngineChatParams
  finish(): void
}

/** An engine without a model, driven by the last message: `hold` waits for the test, `fail` breaks mid-stream. */
export interface FakeEngine extends Engine {
  held: HeldChat[]
  /** Every chat the engine was asked for, by last message (the server's warm-up is `ok`). */
  prompts: string[]
  closed: boolean
}

/**
 * Creates a fake engine (one slot, chat and embed): answers "hi there" at once, holds `hold` prompts until
 * `held[i].finish()` (rejecting when their signal aborts), and throws after one chunk of text on `fail`.
 */
export function fakeEngine(): FakeEngine {
  const engine: FakeEngine = {
    kind: 'llama',
    model: { path: '/models/fake.gguf', sha256: 'ab'.repeat(32), bytes: 1, name: 'fake' },
    slots: 1,
    operations: new Set(['chat', 'embed']),
    held: [],
    prompts: [],
    closed: false,
    async chat(params) {
      const prompt = params.messages.at(-1)?.content ?? ''
      engine.prompts.push(prompt)
      if (prompt === 'hold') {
        params.onText?.('start')
        await new Promise<void>((resolve, reject) => {
          engine.held.push({ params, finish: resolve })
          params.signal.addEventListener('abort', () => reject(new Error('generation aborted')), { once: true })
        })
      }
      if (prompt === 'fail') {
        params.onText?.('par')
        throw new Error('engine broke')
      }
      params.onToken?.()
      params.onText?.('hi')
      params.onText?.(' there')
      return {
        text: prompt === 'hold' ? 'starthi there' : 'hi there',
        finishReason: 'stop',
        inputTokens: 2,
        outputTokens: 2,
      }
    },
    async embed(texts) {
      return { vectors: texts.map(() => [1, 0]), inputTokens: texts.length }
    },
    async close() {
      engine.closed = true
    },
  }
  return engine
}

/**
 * A loaded replica over an engine, without a server (for `createPoolApp(replica).request(...)`).
 * @param pool the pool
 * @param engine the engine, or undefined for a replica still loading
 * @param log where the inference lines go
 */
export function memoryReplica(pool: PoolConfig, engine: Engine | undefined, log: PoolLog): PoolReplica {
  const admission = new Admission(pool.slots, pool.queueMax, Date.now, pool.batchSlots)
  const latency = { interactive: new OutcomeWindow(2000), batch: new OutcomeWindow(2000) }
  const track = (): void => undefined
  const replica: PoolReplica = {
    pool,
    replica: 'mem-1',
    admission,
    latency,
    state: undefined,
    loadError: undefined,
    closing: false,
    track,
  }
  if (engine !== undefined) {
    const metrics = createPoolMetrics(
      { pool: pool.name, replica: 'mem-1', digest: engine.model.sha256, engine: engine.kind, model: engine.model.name },
      () => ({
        busy: admission.busy,
        slots: engine.slots,
        depth: { interactive: admission.depth('interactive'), batch: admission.depth('batch') },
        ready: true,
      }),
    )
    replica.state = { pool, tiers: TIERS, replica: 'mem-1', engine, admission, metrics, latency, log, track }
  }
  return replica
}
