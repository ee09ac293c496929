import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'

import {
  createAuthenticator,
  DEV_PRINCIPAL_HEADER,
  type Authenticate,
  type Caller,
} from '../../../runtime/auth/authenticate.ts'
import { isLoopback } from '../../../runtime/auth/loopback.ts'
import { errorToResponse, isSovraError, type SovraError } from '../../../runtime/core/errors.ts'
import { createTestIssuer, type TestIssuer } from '../../support/jwt.ts'
import { tempProject } from '../../helpers.ts'

const TIERS = ['public', 'internal', 'confidential', 'restricted']
const DEV = [
  { name: 'alice', groups: ['legal'], clearance: 'confidential', tenant: 'bank-a' },
  { name: 'bob', groups: [], clearance: 'public' },
]

let idp: TestIssuer
let jwksFile: string
let withJwt: Authenticate

/** A caller with these headers from this address (null: unknown, as for an in-memory request). */
function caller(headers: Record<string, string>, remoteAddress: string | null = '127.0.0.1'): Caller {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]))
  return { header: (n) => lower[n], remoteAddress: remoteAddress ?? undefined }
}

async function refusal(p: Promise<unknown>): Promise<SovraError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  )
  if (!isSovraError(e)) throw new Error(`expected a SovraError, got ${String(e)}`)
  return e
}

beforeAll(async () => {
  idp = await createTestIssuer()
  jwksFile = join(tempProject({}), 'jwks.json')
  writeFileSync(jwksFile, JSON.stringify(idp.jwks))
  withJwt = createAuthenticator({ jwks: jwksFile, issuer: idp.issuer, audience: idp.audience }, TIERS)
})

describe('createAuthenticator with a JWKS', () => {
  it('turns a valid token into a principal with subject, groups, clearance and tenant', async () => {
    const token = await idp.sign({
      sub: 'alice',
      groups: ['legal', 'audit'],
      clearance: 'confidential',
      tenant: 'bank-a',
    })
    const who = await withJwt(caller({ authorization: `Bearer ${token}` }))
    expect(who.principal).toEqual({
      subject: 'alice',
      groups: ['legal', 'audit'],
      clearance: 'confidential',
      tenant: 'bank-a',
    })
    expect(who.principal.anonymous).toBeUndefined()
    expect(who.token).toBe(true)
    expect(who.claims?.['tenant']).toBe('bank-a')
  })

  it('reads the claims named in config, and puts an unknown clearance at the lowest tier', async () => {
    const custom = createAuthenticator(
      { jwks: jwksFile, claims: { subject: 'email', groups: 'roles', clearance: 'level', tenant: 'org' } },
      TIERS,
    )
    const token = await idp.sign({
      sub: 'u-1',
      email: 'carol@bank.example',
      roles: 'audit risk',
      level: 'restricted',
      org: 'bank-b',
    })
    expect((await custom(caller({ authorization: `Bearer ${token}` }))).principal).toEqual({
      subject: 'carol@bank.example',
      groups: ['audit', 'risk'],
      clearance: 'restricted',
      tenant: 'bank-b',
    })
    const topSecret = await idp.sign({ sub: 'bob', clearance: 'top-secret' })
    expect((await withJwt(caller({ authorization: `Bearer ${topSecret}` }))).principal.clearance).toBe('public')
  })

  it('refuses a forged signature, naming it', async () => {
    const forged = await idp.sign({ sub: 'mallory', clearance: 'restricted' }, { key: idp.otherKey })
    const e = await refusal(withJwt(caller({ authorization: `Bearer ${forged}` })))
    expect(e).toMatchObject({ code: 'ERR_UNAUTHENTICATED', status: 401, details: { reason: 'signature' } })
    expect(e.message).toMatch(/^token refused: bad signature/)
  })

  it('refuses an expired token, saying when it expired', async () => {
    const expired = await idp.sign({ sub: 'alice' }, { exp: Math.floor(Date.now() / 1000) - 120 })
    const e = await refusal(withJwt(caller({ authorization: `Bearer ${expired}` })))
    expect(e).toMatchObject({ code: 'ERR_UNAUTHENTICATED', details: { reason: 'expired' } })
    expect(e.message).toMatch(/^token refused: expired at \d{4}-\d\d-\d\dT/)
  })

  it('refuses a wrong audience and a wrong issuer with what was expected and received', async () => {
    const aud = await refusal(
      withJwt(caller({ authorization: `Bearer ${await idp.sign({ sub: 'alice' }, { audience: 'payroll' })}` })),
    )
    expect(aud).toMatchObject({ code: 'ERR_UNAUTHENTICATED', details: { reason: 'audience' } })
    expect(aud.message).toBe('token refused: wrong audience: expected "sovra", received "payroll"')
    const iss = await refusal(
      withJwt(
        caller({ authorization: `Bearer ${await idp.sign({ sub: 'alice' }, { issuer: 'https://evil.example' })}` }),
      ),
    )
    expect(iss).toMatchObject({ code: 'ERR_UNAUTHENTICATED', details: { reason: 'issuer' } })
    expect(iss.message).toBe(
      'token refused: wrong issuer: expected "https://idp.bank.example", received "https://evil.example"',
    )
  })

  it('refuses a token signed with a key the JWKS does not have, a malformed token, and one without a subject', async () => {
    const unknownKid = await refusal(
      withJwt(caller({ authorization: `Bearer ${await idp.sign({ sub: 'a' }, { kid: 'rotated' })}` })),
    )
    expect(unknownKid).toMatchObject({
      details: { reason: 'unknown_key' },
      message: expect.stringContaining('"kid":"rotated"'),
    })
    expect(await refusal(withJwt(caller({ authorization: 'Bearer not.a.jwt' })))).toMatchObject({
      status: 401,
      details: { reason: 'malformed' },
    })
    expect(
      await refusal(withJwt(caller({ authorization: `Bearer ${await idp.sign({ groups: ['x'] })}` }))),
    ).toMatchObject({ status: 401, details: { reason: 'claims' }, message: expect.stringContaining('no subject') })
  })

  it('refuses a caller without a token, or with another scheme, unless anonymous callers are allowed', async () => {
    expect(await refusal(withJwt(caller({})))).toMatchObject({
      status: 401,
      message: 'expected Authorization: Bearer <JWT>, received no Authorization header',
    })
    expect((await refusal(withJwt(caller({ authorization: 'Basic YTpi' })))).message).toBe(
      'expected Authorization: Bearer <JWT>, received a Basic credential',
    )
    const open = createAuthenticator({ jwks: jwksFile, allowAnonymous: true }, TIERS)
    expect((await open(caller({}))).principal).toEqual({
      subject: 'anonymous',
      groups: [],
      clearance: 'public',
      anonymous: true,
    })
  })

  it('answers 401 with the reason through the core error mapping', async () => {
    const e = await refusal(
      withJwt(caller({ authorization: `Bearer ${await idp.sign({ sub: 'alice' }, { audience: 'payroll' })}` })),
    )
    const res = errorToResponse(e)
    expect(res.status).toBe(401)
    expect(await res.json()).toEqual({
      error: {
        code: 'ERR_UNAUTHENTICATED',
        message: 'token refused: wrong audience: expected "sovra", received "payroll"',
        reason: 'audience',
      },
    })
  })

  it('refuses the dev principal header while a JWKS is set, even from loopback', async () => {
    const e = await refusal(withJwt(caller({ [DEV_PRINCIPAL_HEADER]: 'alice' })))
    expect(e).toMatchObject({ status: 401, details: { reason: 'dev_principal' } })
    expect(e.message).toMatch(/\[auth\] jwks is set/)
  })
})

describe('createAuthenticator without a JWKS', () => {
  const dev = createAuthenticator({ devPrincipals: DEV }, TIERS)

  it('makes every caller without a dev principal anonymous with the lowest clearance, leaving Authorization to the function', async () => {
    const lowestFirst = createAuthenticator({}, ['open', 'secret'])
    expect((await lowestFirst(caller({}))).principal).toEqual({
      subject: 'anonymous',
      groups: [],
      clearance: 'open',
      anonymous: true,
    })
    const who = await dev(caller({ authorization: 'Bearer something-the-function-checks' }))
    expect(who.principal.anonymous).toBe(true)
    expect(who.token).toBeUndefined()
  })

  it('accepts x-sovra-dev-principal from loopback (IPv4, IPv6, IPv4-mapped)', async () => {
    for (const address of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) {
      expect((await dev(caller({ [DEV_PRINCIPAL_HEADER]: 'alice' }, address))).principal).toEqual({
        subject: 'alice',
        groups: ['legal'],
        clearance: 'confidential',
        tenant: 'bank-a',
      })
    }
  })

  it('refuses x-sovra-dev-principal off loopback, and when the address is unknown, naming the address', async () => {
    for (const address of ['10.0.0.5', '::ffff:10.0.0.5', '2001:db8::1', '128.0.0.1']) {
      const e = await refusal(dev(caller({ [DEV_PRINCIPAL_HEADER]: 'alice' }, address)))
      expect(e).toMatchObject({ code: 'ERR_UNAUTHENTICATED', status: 401, details: { reason: 'dev_principal' } })
      expect(e.message).toContain(`accepted only from loopback (127.0.0.0/8, ::1); this request came from ${address}`)
    }
    expect((await refusal(dev(caller({ [DEV_PRINCIPAL_HEADER]: 'alice' }, null)))).message).toMatch(/unknown address/)
  })

  it('refuses an unknown dev principal, listing the valid names', async () => {
    expect((await refusal(dev(caller({ [DEV_PRINCIPAL_HEADER]: 'eve' })))).message).toBe(
      'unknown dev principal "eve"; valid names are: alice, bob',
    )
  })

  it('refuses anonymous callers when allow_anonymous is false', async () => {
    const strict = createAuthenticator({ devPrincipals: DEV, allowAnonymous: false }, TIERS)
    expect(await refusal(strict(caller({})))).toMatchObject({ status: 401, details: { reason: 'missing' } })
    expect((await strict(caller({ [DEV_PRINCIPAL_HEADER]: 'bob' }))).principal.subject).toBe('bob')
  })
})

describe('isLoopback', () => {
  it('knows 127.0.0.0/8, ::1 and IPv4-mapped loopback, and nothing else', () => {
    expect(['127.0.0.1', '127.255.255.254', '::1', '::FFFF:127.0.0.1', '0:0:0:0:0:0:0:1'].every(isLoopback)).toBe(true)
    expect(['10.0.0.1', '0.0.0.0', '::', '127.0.0.256', '::ffff:192.168.1.1', 'localhost', ''].some(isLoopback)).toBe(
      false,
    )
    expect(isLoopback(undefined)).toBe(false)
  })
})
