import { SovraError } from '../../runtime/core/errors.ts'
import type { WorkClass } from './admission.ts'
import type { EngineOperation } from './engine.ts'
import { DEFAULT_DEADLINE_MS, type ReplicaState } from './replica-state.ts'

/** A request that holds a slot. */
export interface Admitted {
  cls: WorkClass
  tier: string
  slot: number
  queueMs: number
  /** Aborts when the client goes away or the deadline passes. */
  signal: AbortSignal
  started: number
  /** Aborts the work (the SSE reader cancelled). */
  abort(reason: SovraError): void
  /** Gives the slot back; idempotent. */
  release(): void
}

/** The sovra fields of an inference body that admission reads. */
export interface AdmitFields {
  tier?: string | undefined
  class?: WorkClass | undefined
  deadline_ms?: number | undefined
  legal_basis?: string | undefined
}

/** The reason work stops when its client closed the connection. */
export function clientGone(): SovraError {
  return new SovraError('ERR_BAD_REQUEST', 'client closed the connection')
}

/**
 * Checks a request against the replica (operation, tier clearance, legal basis) and waits for a slot.
 * @param state the loaded replica
 * @param op the operation asked for
 * @param body the request's sovra fields
 * @param client aborts when the client goes away (the request's signal); a queued waiter is then dropped
 */
export async function admit(
  state: ReplicaState,
  op: EngineOperation,
  body: AdmitFields,
  client: AbortSignal,
): Promise<Admitted> {
  const started = performance.now()
  const { pool, tiers, engine } = state
  if (!engine.operations.has(op)) {
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `pool ${JSON.stringify(pool.name)} (${engine.kind}, model ${engine.model.name}) does not serve ${op}; it serves: ${[...engine.operations].join(', ')}`,
    )
  }
  const tier = body.tier ?? pool.tier
  if (!tiers.names.includes(tier))
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `tier: unknown tier ${JSON.stringify(tier)}; valid tiers are: ${tiers.names.join(', ')}`,
    )
  tiers.assert(pool.clearance, tier, `pool ${JSON.stringify(pool.name)}`)
  if (engine.kind === 'external' && body.legal_basis === undefined) {
    throw new SovraError(
      'ERR_LEGAL_BASIS',
      `pool ${JSON.stringify(pool.name)} sends data to an external provider (${engine.model.path}); the request needs legal_basis (e.g. "contract", "consent"), received nothing`,
    )
  }
  const cls = body.class ?? pool.class
  const deadlineMs = body.deadline_ms ?? DEFAULT_DEADLINE_MS
  // A client that left while its body was read never fires 'abort' again; queueing it would hold a place.
  if (client.aborted) throw clientGone()
  const controller = new AbortController()
  const onClose = (): void => controller.abort(clientGone())
  client.addEventListener('abort', onClose, { once: true })
  const grant = await state.admission
    .acquire(cls, Date.now() + deadlineMs - (performance.now() - started), controller.signal)
    .catch((e: unknown) => {
      client.removeEventListener('abort', onClose)
      throw e
    })
  // The running deadline starts at the grant: a timer set before the wait would race admission's queue deadline
  // and report a request that never left the queue as "passed while running".
  const timer = setTimeout(
    () => controller.abort(new SovraError('ERR_TIMEOUT', `deadline of ${deadlineMs} ms passed while running`)),
    Math.max(0, deadlineMs - (performance.now() - started)),
  )
  let released = false
  return {
    cls,
    tier,
    slot: grant.slot,
    queueMs: grant.queuedMs,
    signal: controller.signal,
    started,
    abort(reason) {
      controller.abort(reason)
    },
    release() {
      if (released) return
      released = true
      clearTimeout(timer)
      client.removeEventListener('abort', onClose)
      state.admission.release(grant.slot)
    },
  }
}

/**
 * The `sovra` member of a response: pool, replica, tier, class, model and timings.
 * @param state the loaded replica
 * @param a the admitted request
 * @param extra more timings (`ttft_ms`)
 */
export function meta(
  state: ReplicaState,
  a: Admitted,
  extra: Record<string, number | undefined>,
): Record<string, unknown> {
  return {
    pool: state.pool.name,
    replica: state.replica,
    tier: a.tier,
    class: a.cls,
    model_digest: state.engine.model.sha256,
    model_name: state.engine.model.name,
    timings: { queue_ms: a.queueMs, ...extra, total_ms: Math.round(performance.now() - a.started) },
  }
}

/**
 * The `x-sovra-*` headers of a successful inference response.
 * @param state the loaded replica
 */
export function sovraHeaders(state: ReplicaState): Record<string, string> {
  return {
    'x-sovra-pool': state.pool.name,
    'x-sovra-replica': state.replica,
    'x-sovra-model-digest': state.engine.model.sha256,
  }
}

/**
 * What a failed engine call reports: the abort's reason (client gone, deadline) when the signal caused it.
 * @param signal the request's signal
 * @param e what the engine threw
 */
export function abortReason(signal: AbortSignal, e: unknown): unknown {
  return signal.aborted && signal.reason instanceof SovraError ? signal.reason : e
}

/**
 * Writes the one `inference` log line of an admitted request and adds its time to the class's latency window.
 * @param state the loaded replica
 * @param a the admitted request
 * @param op `chat`, `embed` or `classify`
 * @param status the HTTP status it ended with
 * @param tokens input and output tokens, time to first token
 */
export function finish(
  state: ReplicaState,
  a: Admitted,
  op: string,
  status: number,
  tokens: { in: number; out: number; ttftMs: number | undefined },
): void {
  const totalMs = performance.now() - a.started
  state.log.info(
    {
      pool: state.pool.name,
      replica: state.replica,
      model_sha256: state.engine.model.sha256,
      op,
      class: a.cls,
      tier: a.tier,
      status,
      queue_ms: a.queueMs,
      ttft_ms: tokens.ttftMs,
      total_ms: Math.round(totalMs),
      tokens_in: tokens.in,
      tokens_out: tokens.out,
    },
    'inference',
  )
  // The scaler's evidence (`/v1/status` p95 per class).
  state.latency[a.cls].add(totalMs)
}
