import { describe, expect, it } from 'vitest'

import type { PoolView, Replica } from '../../../infra/pools/replica.ts'
import { AiRouter } from '../../../infra/pools/router.ts'
import { isSovraError } from '../../../runtime/core/errors.ts'
import { poolConfig, TIERS } from '../../support/pools.ts'

function replica(id: string, outstanding = 0, state: Replica['state'] = 'ready'): Replica {
  return {
    id,
    url: `http://127.0.0.1:1/${id}`,
    state,
    outstanding,
    operations: [],
    modelDigest: undefined,
    status: undefined,
    readyAt: 0,
    startedAt: 0,
  }
}
const view = (
  entry: Parameters<typeof poolConfig>[0],
  replicas: Replica[] = [replica(`${entry.name}-1`)],
): PoolView => ({ config: poolConfig(entry), replicas })

const qaInternal = view({
  name: 'qa-internal',
  alias: 'qa',
  engine: 'llama',
  model: 'tiny:llama',
  tier: 'internal',
  class: 'interactive',
})
const qaConfidentialBatch = view({
  name: 'qa-conf-batch',
  alias: 'qa',
  engine: 'llama',
  model: 'tiny:llama',
  tier: 'confidential',
  class: 'batch',
})
const qaConfidential = view({
  name: 'qa-conf',
  alias: 'qa',
  engine: 'llama',
  model: 'tiny:llama',
  tier: 'confidential',
  class: 'interactive',
})
const qaExternal = view({
  name: 'qa-ext',
  alias: 'qa',
  engine: 'external',
  url: 'https://llm.example/v1',
  class: 'interactive',
})
const embed = view({ name: 'embed', engine: 'onnx', model: 'tiny:embed', tier: 'internal', class: 'batch' })

function router(pools: PoolView[]): AiRouter {
  return new AiRouter({ pools: () => pools }, TIERS)
}
function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn()
  } catch (e) {
    if (isSovraError(e)) return { code: e.code, message: e.message }
    throw e
  }
  throw new Error('expected a refusal')
}

describe('AiRouter.candidates', () => {
  it('picks pools by alias and operation, the requested class first, then lower clearance', () => {
    const r = router([qaConfidential, qaConfidentialBatch, qaInternal, embed])
    expect(r.candidates('chat', { model: 'qa' }, 'internal').map((p) => p.config.name)).toEqual([
      'qa-internal',
      'qa-conf',
      'qa-conf-batch',
    ])
    expect(r.candidates('chat', { model: 'qa', class: 'batch' }, 'internal').map((p) => p.config.name)).toEqual([
      'qa-conf-batch',
      'qa-internal',
      'qa-conf',
    ])
    expect(r.candidates('embed', {}, 'public').map((p) => p.config.name)).toEqual(['embed'])
  })

  it('never offers a pool whose clearance is below the request tier, and says so when none is left', () => {
    const r = router([qaInternal, qaConfidential])
    expect(r.candidates('chat', { model: 'qa' }, 'confidential').map((p) => p.config.name)).toEqual(['qa-conf'])
    const denied = refusal(() => r.candidates('chat', { model: 'qa' }, 'restricted'))
    expect(denied.code).toBe('ERR_TIER_DENIED')
    expect(denied.message).toContain('"restricted"')
    expect(denied.message).toContain('qa-internal (clearance internal)')
    expect(denied.message).toContain('qa-conf (clearance confidential)')
  })

  it('uses an external provider only with a legal basis and only up to its clearance (internal by default)', () => {
    const r = router([qaExternal])
    expect(refusal(() => r.candidates('chat', { model: 'qa' }, 'internal')).code).toBe('ERR_LEGAL_BASIS')
    expect(
      r.candidates('chat', { model: 'qa', legal_basis: 'contract' }, 'internal').map((p) => p.config.name),
    ).toEqual(['qa-ext'])
    expect(refusal(() => r.candidates('chat', { model: 'qa', legal_basis: 'contract' }, 'confidential')).code).toBe(
      'ERR_TIER_DENIED',
    )
    // With a local pool of enough clearance, the local one comes first.
    expect(
      router([qaExternal, qaInternal])
        .candidates('chat', { model: 'qa', legal_basis: 'contract' }, 'internal')
        .map((p) => p.config.name),
    ).toEqual(['qa-internal', 'qa-ext'])
  })

  it('names the valid models and operations when the request matches none', () => {
    const r = router([qaInternal, embed])
    const unknown = refusal(() => r.candidates('chat', { model: 'gpt' }, 'internal'))
    expect(unknown).toMatchObject({ code: 'ERR_NOT_FOUND' })
    expect(unknown.message).toMatch(/valid models: qa, embed/)
    const wrongOp = refusal(() => r.candidates('embed', { model: 'qa' }, 'internal'))
    expect(wrongOp.code).toBe('ERR_BAD_REQUEST')
    expect(wrongOp.message).toMatch(/qa-internal \(chat\)/)
  })
})

describe('AiRouter.call', () => {
  it('refuses unknown tiers and reports no ready replica as ERR_OVERLOADED', async () => {
    const starting = view({ name: 'qa', engine: 'llama', model: 'tiny:llama' }, [
      replica('qa-1', 0, 'starting'),
      replica('qa-2', 0, 'draining'),
    ])
    const r = router([starting])
    const caller = { function: 'f', tier: 'internal', timeoutMs: 1000 }
    await expect(r.call('chat', { model: 'qa', tier: 'secret', messages: [] }, caller)).rejects.toThrow(
      /unknown tier "secret"/,
    )
    const e = await r.call('chat', { model: 'qa', messages: [] }, caller).catch((x: unknown) => x)
    expect(isSovraError(e) && e.code).toBe('ERR_OVERLOADED')
    expect(isSovraError(e) && e.message).toMatch(/qa \(starting, draining\)/)
  })

  it('retries once on another replica when the first is unreachable, then reports the failure', async () => {
    const dead = view({ name: 'qa', engine: 'llama', model: 'tiny:llama' }, [
      replica('qa-1'),
      replica('qa-2'),
      replica('qa-3'),
    ])
    const warnings: Array<Record<string, unknown> & { msg: string }> = []
    const r = new AiRouter({ pools: () => [dead] }, TIERS, {
      info: () => undefined,
      warn: (f, msg) => void warnings.push({ ...f, msg }),
    })
    const e = await r
      .call('chat', { model: 'qa', messages: [] }, { function: 'f', tier: 'internal', timeoutMs: 5000 })
      .catch((x: unknown) => x)
    expect(isSovraError(e) && e.code).toBe('ERR_UPSTREAM')
    const retries = warnings.filter((w) => w.msg.startsWith('inference replica failed'))
    expect(retries).toHaveLength(2)
    expect(new Set(retries.map((w) => w['replica'])).size).toBe(2)
    // The failed call itself is logged once, with who asked and why it failed.
    expect(warnings.filter((w) => w.msg === 'ai call failed')).toEqual([
      expect.objectContaining({
        function: 'f',
        op: 'chat',
        model: 'qa',
        tier: 'internal',
        code: 'ERR_UPSTREAM',
        status: 502,
      }),
    ])
    expect(dead.replicas.every((x) => x.outstanding === 0)).toBe(true)
  })
})
