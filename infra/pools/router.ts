import { SovraError, type ErrorCode, ERROR_CODES } from '../../runtime/core/errors.ts'
import type { AiCaller, AiOp, AiOperations, AiService } from '../../runtime/core/ports.ts'
import type { TierOrder } from '../../runtime/core/tiers.ts'
import type { Logger } from '../../runtime/core/observe.ts'
import type { PoolDirectory, PoolView, Replica } from './replica.ts'

type Op = AiOp
const PATHS: Record<Op, string> = { chat: '/v1/chat/completions', embed: '/v1/embeddings', classify: '/v1/classify' }

/** A failure that may succeed on another replica: nothing reached the caller yet. */
class RetryableError extends SovraError {}

/** What the router logs per call. */
export type RouterLog = Pick<Logger, 'info' | 'warn'>

/**
 * The `env.AI` router: picks the pool by model alias, operation, class and the request's tier (never a pool whose
 * clearance is below the tier; external providers only with a legal basis), the replica by least outstanding
 * requests, and retries once on another replica when the first fails before answering.
 * @example
 * const router = new AiRouter(scaler, project.tiers)
 * await router.call('chat', { model: 'qa', messages }, { function: 'ask', tier: 'confidential', timeoutMs: 30000 })
 */
export class AiRouter implements AiService {
  /**
   * @param directory where pools and replicas are
   * @param tiers the project's tier order
   * @param log where retries are reported
   */
  constructor(
    private readonly directory: PoolDirectory,
    private readonly tiers: TierOrder,
    private readonly log?: RouterLog,
  ) {}

  /**
   * The pools that may serve a request, best first. Throws when none may, saying why (unknown alias, operation,
   * clearance, legal basis).
   */
  candidates(op: Op, request: { model?: unknown; class?: unknown; legal_basis?: unknown }, tier: string): PoolView[] {
    const all = this.directory.pools()
    const model = typeof request.model === 'string' ? request.model : undefined
    const named = model === undefined ? all : all.filter((p) => p.config.alias === model || p.config.name === model)
    if (named.length === 0) {
      const aliases = [...new Set(all.map((p) => p.config.alias))]
      throw new SovraError(
        'ERR_NOT_FOUND',
        `no pool serves model ${JSON.stringify(model)}; valid models: ${aliases.length ? aliases.join(', ') : '(none: add [[pools]] to the config)'}`,
      )
    }
    const serving = named.filter((p) => servesOp(p, op))
    if (serving.length === 0) {
      throw new SovraError(
        'ERR_BAD_REQUEST',
        `${model === undefined ? 'no pool' : `model ${JSON.stringify(model)}`} serves ${op}; pools: ${named.map((p) => `${p.config.name} (${operationsOf(p).join(', ')})`).join('; ')}`,
      )
    }
    const cleared = serving.filter((p) => this.tiers.allows(p.config.clearance, tier))
    if (cleared.length === 0) {
      throw new SovraError(
        'ERR_TIER_DENIED',
        `request tier ${JSON.stringify(tier)} is above the clearance of every pool for ${model === undefined ? op : JSON.stringify(model)}: ${serving.map((p) => `${p.config.name} (clearance ${p.config.clearance})`).join(', ')}; sovra never falls back to a lower clearance`,
      )
    }
    const lawful = cleared.filter((p) => p.config.engine !== 'external' || typeof request.legal_basis === 'string')
    if (lawful.length === 0) {
      throw new SovraError(
        'ERR_LEGAL_BASIS',
        `only external providers (${cleared.map((p) => p.config.name).join(', ')}) may serve this request, and it carries no legal_basis`,
      )
    }
    const cls = request.class === 'batch' ? 'batch' : 'interactive'
    const rank = (p: PoolView): number[] => [
      p.config.class === cls ? 0 : 1,
      p.config.engine === 'external' ? 1 : 0,
      this.tiers.rank(p.config.clearance),
    ]
    return lawful.sort((a, b) => {
      const ra = rank(a)
      const rb = rank(b)
      return ra[0]! - rb[0]! || ra[1]! - rb[1]! || ra[2]! - rb[2]! // eslint-disable-line @typescript-eslint/no-non-null-assertion -- fixed-length tuples
    })
  }

  /**
   * Runs one call (see the class comment) and logs it: who asked (function), what (op, model, tier, class, legal
   * basis) and who answered (pool, replica, model digest), with tokens and time, or why it was refused. An auditor
   * reads which model saw which tier of data from these lines.
   */
  async call<K extends AiOp>(
    op: K,
    typed: AiOperations[K]['request'],
    caller: AiCaller,
  ): Promise<AiOperations[K]['result']> {
    // The wire shapes are read field by field below; the port's types are what callers see.
    const request = typed as unknown as Record<string, unknown>
    const started = performance.now()
    const asked = {
      function: caller.function,
      ...(caller.invocationId === undefined ? {} : { invocation_id: caller.invocationId }),
      op,
      model: request['model'],
      tier: request['tier'] ?? caller.tier,
      class: request['class'],
      ...(typeof request['legal_basis'] === 'string' ? { legal_basis: request['legal_basis'] } : {}),
    }
    try {
      const r = await this.#route(op, request, caller, started)
      const usage = r['usage'] as { input_tokens: number; output_tokens: number }
      this.log?.info(
        {
          ...asked,
          class: r['class'],
          status: 200,
          pool: r['pool'],
          replica: r['replica'],
          model_digest: r['model_digest'],
          tokens_in: usage.input_tokens,
          tokens_out: usage.output_tokens,
          total_ms: Math.round(performance.now() - started),
          attempts: (r['timings'] as { attempts: number }).attempts,
        },
        'ai call',
      )
      return r as unknown as AiOperations[K]['result']
    } catch (e) {
      const err = e instanceof SovraError ? e : new SovraError('ERR_INTERNAL', (e as Error).message)
      this.log?.warn(
        {
          ...asked,
          status: err.status,
          code: err.code,
          error: err.message,
          total_ms: Math.round(performance.now() - started),
        },
        'ai call failed',
      )
      throw e
    }
  }

  async #route(
    op: Op,
    request: Record<string, unknown>,
    caller: AiCaller,
    started: number,
  ): Promise<Record<string, unknown>> {
    const tier = typeof request['tier'] === 'string' ? request['tier'] : caller.tier
    if (!this.tiers.names.includes(tier))
      throw new SovraError(
        'ERR_BAD_REQUEST',
        `tier: unknown tier ${JSON.stringify(tier)}; valid tiers are: ${this.tiers.names.join(', ')}`,
      )
    const pools = this.candidates(op, request, tier)
    const deadlineMs = typeof request['deadline_ms'] === 'number' ? request['deadline_ms'] : caller.timeoutMs
    const tried = new Set<Replica>()
    let lastError: Error | undefined
    for (let attempt = 1; attempt <= 2; attempt++) {
      // Re-read the directory: a replica that became ready since the first attempt is a valid retry target.
      const picked = pickReplica(attempt === 1 ? pools : this.candidates(op, request, tier), tried)
      if (picked === undefined) break
      tried.add(picked.replica)
      const remaining = Math.max(1, Math.round(deadlineMs - (performance.now() - started)))
      try {
        const { schema, ...rest } = request
        const body = {
          ...rest,
          tier,
          class: request['class'] ?? picked.pool.config.class,
          deadline_ms: remaining,
          ...(isSchema(schema)
            ? { response_format: { type: 'json_schema', json_schema: { name: 'output', schema } } }
            : {}),
        }
        const shaped = shape(op, await send(picked.replica, op, body, remaining), picked, attempt, started)
        // The replica validated the output against the schema; parse it once here for the caller.
        if (isSchema(schema)) shaped['json'] = JSON.parse(shaped['text'] as string)
        return shaped
      } catch (e) {
        if (!(e instanceof RetryableError)) throw e
        lastError = e
        this.log?.warn(
          { pool: picked.pool.config.name, replica: picked.replica.id, attempt, err: e.message },
          'inference replica failed before answering; retrying on another replica',
        )
      }
    }
    if (lastError !== undefined)
      throw new SovraError(
        lastError instanceof SovraError ? lastError.code : 'ERR_UPSTREAM',
        lastError.message,
        lastError instanceof SovraError
          ? { status: lastError.status, ...(lastError.details ? { details: lastError.details } : {}) }
          : {},
      )
    throw new SovraError(
      'ERR_OVERLOADED',
      `no ready replica in ${pools.map((p) => `${p.config.name} (${p.replicas.map((r) => r.state).join(', ') || 'no replicas'})`).join('; ')}`,
      { details: { retry_after: 1 } },
    )
  }
}

function isSchema(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function operationsOf(p: PoolView): string[] {
  const reported = p.replicas.find((r) => r.operations.length > 0)?.operations
  if (reported !== undefined) return reported
  if (p.config.engine === 'llama') return ['chat']
  if (p.config.engine === 'external') return ['chat', 'embed', 'classify']
  if (p.config.model === 'tiny:embed') return ['embed']
  if (p.config.model === 'tiny:classify') return ['classify']
  return ['embed', 'classify']
}

function servesOp(p: PoolView, op: Op): boolean {
  return operationsOf(p).includes(op)
}

/** The ready replica with the fewest outstanding requests in the first pool that has one, skipping tried ones. */
function pickReplica(
  pools: readonly PoolView[],
  tried: ReadonlySet<Replica>,
): { pool: PoolView; replica: Replica } | undefined {
  for (const pool of pools) {
    let best: Replica | undefined
    for (const r of pool.replicas) {
      if (r.state !== 'ready' || r.url === undefined || tried.has(r)) continue
      if (best === undefined || r.outstanding < best.outstanding) best = r
    }
    if (best !== undefined) return { pool, replica: best }
  }
  return undefined
}

async function send(
  replica: Replica,
  op: Op,
  body: Record<string, unknown>,
  deadlineMs: number,
): Promise<Record<string, unknown>> {
  replica.outstanding++
  try {
    let res: Response
    try {
      res = await fetch(`${replica.url}${PATHS[op]}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(deadlineMs + 1000),
      })
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message
      if ((e as Error).name === 'TimeoutError')
        throw new SovraError(
          'ERR_TIMEOUT',
          `replica ${replica.id} did not answer within the deadline (${deadlineMs} ms)`,
        )
      throw new RetryableError(
        'ERR_UPSTREAM',
        `replica ${replica.id} (${replica.url}) failed before answering: ${cause}`,
      )
    }
    let json: Record<string, unknown>
    try {
      json = (await res.json()) as Record<string, unknown>
    } catch (e) {
      throw new RetryableError('ERR_UPSTREAM', `replica ${replica.id} broke off its answer: ${(e as Error).message}`)
    }
    if (res.ok) return json
    const err = (json['error'] ?? {}) as { code?: string; message?: string } & Record<string, unknown>
    const code: ErrorCode = err.code !== undefined && err.code in ERROR_CODES ? (err.code as ErrorCode) : 'ERR_UPSTREAM'
    const { code: _c, message: _m, ...details } = err
    const Err = res.status === 429 || res.status === 503 ? RetryableError : SovraError
    throw new Err(code, err.message ?? `replica ${replica.id} answered ${res.status}`, { status: res.status, details })
  } finally {
    replica.outstanding--
  }
}

function shape(
  op: Op,
  reply: Record<string, unknown>,
  picked: { pool: PoolView; replica: Replica },
  attempts: number,
  started: number,
): Record<string, unknown> {
  const s = (reply['sovra'] ?? {}) as {
    pool?: string
    replica?: string
    model_digest?: string
    model_name?: string
    tier?: string
    class?: string
    timings?: { queue_ms?: number; ttft_ms?: number }
  }
  const usage = (reply['usage'] ?? {}) as { prompt_tokens?: number; completion_tokens?: number }
  const info = {
    pool: s.pool ?? picked.pool.config.name,
    replica: s.replica ?? picked.replica.id,
    model: s.model_name ?? String(reply['model'] ?? ''),
    model_digest: s.model_digest ?? '',
    tier: s.tier,
    class: s.class,
    usage: { input_tokens: usage.prompt_tokens ?? 0, output_tokens: usage.completion_tokens ?? 0 },
    timings: {
      queue_ms: s.timings?.queue_ms ?? 0,
      ...(s.timings?.ttft_ms === undefined ? {} : { ttft_ms: s.timings.ttft_ms }),
      total_ms: Math.round(performance.now() - started),
      attempts,
    },
  }
  const data = (reply['data'] ?? []) as Array<Record<string, unknown>>
  if (op === 'embed') return { ...info, vectors: data.map((d) => d['embedding']) }
  if (op === 'classify') return { ...info, results: data.map((d) => d['labels']) }
  const choice = ((reply['choices'] ?? []) as Array<{ message?: { content?: string }; finish_reason?: string }>)[0]
  return {
    ...info,
    text: choice?.message?.content ?? '',
    finish_reason: choice?.finish_reason === 'length' ? 'length' : 'stop',
  }
}
