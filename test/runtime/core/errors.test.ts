import { describe, expect, it } from 'vitest'
import { errorToResponse, isSovraError, SovraError, TierOrder, defineFunction } from 'sovra'

describe('SovraError', () => {
  it('carries a stable code, the status it maps to and the user/system split', () => {
    const user = new SovraError('ERR_CONFIG', 'bad')
    expect(user.code).toBe('ERR_CONFIG')
    expect(user.isUserError).toBe(true)
    const system = new SovraError('ERR_TIMEOUT', 'slow')
    expect(system.status).toBe(504)
    expect(system.isUserError).toBe(false)
  })

  it('is recognised across realms by name and code, not by prototype', () => {
    expect(isSovraError({ name: 'SovraError', code: 'ERR_TIMEOUT', message: 'x' })).toBe(true)
    expect(isSovraError({ name: 'SovraError', code: 'ERR_MADE_UP' })).toBe(false)
    expect(isSovraError(new Error('x'))).toBe(false)
  })
})

describe('errorToResponse', () => {
  it('maps a SovraError to its status and a JSON body with code, message and invocation id', async () => {
    const res = errorToResponse(new SovraError('ERR_OVERLOADED', 'busy', { details: { retry_after: 2 } }), 'inv-1')
    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('2')
    expect(res.headers.get('x-sovra-invocation-id')).toBe('inv-1')
    expect(await res.json()).toEqual({
      error: { code: 'ERR_OVERLOADED', message: 'busy', retry_after: 2, invocation_id: 'inv-1' },
    })
  })

  it('never passes the message or stack of a foreign error to the caller', async () => {
    const res = errorToResponse(new Error('password=hunter2'), 'inv-2')
    expect(res.status).toBe(500)
    const text = await res.text()
    expect(text).not.toContain('hunter2')
    expect(JSON.parse(text).error.code).toBe('ERR_HANDLER')
  })
})

describe('TierOrder', () => {
  const tiers = new TierOrder()

  it('orders the default tiers public < internal < confidential < restricted', () => {
    expect(tiers.allows('confidential', 'internal')).toBe(true)
    expect(tiers.allows('internal', 'confidential')).toBe(false)
    expect(tiers.allows('restricted', 'restricted')).toBe(true)
  })

  it('refuses with ERR_TIER_DENIED naming both tiers', () => {
    expect(() => tiers.assert('internal', 'restricted', 'pool "qa"')).toThrowError(
      /pool "qa" is cleared for tier "internal" but the data is tier "restricted"/,
    )
  })

  it('rejects unknown tiers with the valid list, and duplicate or empty orders', () => {
    expect(() => tiers.rank('secret')).toThrowError(
      /Unknown tier "secret". Valid tiers are: public, internal, confidential, restricted/,
    )
    expect(() => new TierOrder(['a', 'a'])).toThrowError(/duplicate tier "a"/)
    expect(() => new TierOrder([])).toThrowError(/at least one tier/)
  })
})

describe('defineFunction', () => {
  it('returns the very module it is given, so plain modules behave the same', () => {
    const mod = { fetch: () => new Response('x') }
    expect(defineFunction(mod)).toBe(mod)
  })
})
