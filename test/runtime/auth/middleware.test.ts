import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'

import { createAuthenticator, DEV_PRINCIPAL_HEADER } from '../../../runtime/auth/authenticate.ts'
import { principalMiddleware, type NodeBindings, type PrincipalVariables } from '../../../runtime/auth/middleware.ts'
import { errorToResponse } from '../../../runtime/core/errors.ts'

const TIERS = ['public', 'internal', 'confidential', 'restricted']

/** An app as a host builds one: the middleware, then the core's one error mapping. */
function app(): Hono<{ Bindings: NodeBindings; Variables: PrincipalVariables }> {
  const a = new Hono<{ Bindings: NodeBindings; Variables: PrincipalVariables }>()
  a.use(
    principalMiddleware(
      createAuthenticator({ devPrincipals: [{ name: 'alice', groups: ['legal'], clearance: 'internal' }] }, TIERS),
    ),
  )
  a.get('/me', (c) => c.json(c.get('principal')))
  a.onError((e) => errorToResponse(e))
  return a
}

// @hono/node-server puts the Node request in c.env.incoming; the socket's address is what the middleware reads.
const from = (remoteAddress: string): NodeBindings => ({
  incoming: { socket: { remoteAddress } } as NodeBindings['incoming'],
})

describe('principalMiddleware', () => {
  it('sets c.get("principal"): anonymous with the lowest clearance when the caller sends nothing', async () => {
    const res = await app().request('/me', {}, from('10.0.0.7'))
    expect(await res.json()).toEqual({ subject: 'anonymous', groups: [], clearance: 'public', anonymous: true })
  })

  it('takes a dev principal from a loopback socket', async () => {
    const res = await app().request('/me', { headers: { [DEV_PRINCIPAL_HEADER]: 'alice' } }, from('::ffff:127.0.0.1'))
    expect(await res.json()).toEqual({ subject: 'alice', groups: ['legal'], clearance: 'internal' })
  })

  it('answers 401 ERR_UNAUTHENTICATED with the reason off loopback and in memory (no socket)', async () => {
    const off = await app().request('/me', { headers: { [DEV_PRINCIPAL_HEADER]: 'alice' } }, from('192.168.4.20'))
    expect(off.status).toBe(401)
    expect(await off.json()).toEqual({
      error: {
        code: 'ERR_UNAUTHENTICATED',
        reason: 'dev_principal',
        message:
          'x-sovra-dev-principal is accepted only from loopback (127.0.0.0/8, ::1); this request came from 192.168.4.20',
      },
    })
    const memory = await app().request('/me', { headers: { [DEV_PRINCIPAL_HEADER]: 'alice' } })
    expect(memory.status).toBe(401)
  })
})
