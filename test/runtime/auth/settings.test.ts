import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { loadConfig } from '../../../runtime/config/load.ts'
import { ConfigError } from '../../../runtime/config/diagnostics.ts'
import { ROOT, tempProject } from '../../helpers.ts'

const FN = `name = "echo"\nmain = "${join(ROOT, 'functions/echo/index.ts')}"\nroutes = ["/echo"]\n`

/** Loads a project whose config is FN plus `extra`, with a JWKS file next to it. */
function load(extra: string): ReturnType<typeof loadConfig> {
  const dir = tempProject({ 'wrangler-compat.toml': `${FN}${extra}`, 'keys/jwks.json': '{"keys":[]}' })
  return loadConfig({ cwd: dir, processEnv: {} })
}

function configErrors(extra: string): Array<{ path?: string; message: string }> {
  try {
    load(extra)
  } catch (e) {
    if (e instanceof ConfigError) return e.diagnostics.filter((d) => d.severity === 'error')
    throw e
  }
  throw new Error('expected a ConfigError')
}

describe('[auth] config', () => {
  it('defaults: no jwks, every caller anonymous, the standard claim names', () => {
    expect(load('').project.auth).toEqual({
      source: 'none',
      claims: { subject: 'sub', groups: 'groups', clearance: 'clearance', tenant: 'tenant' },
      allowAnonymous: true,
      devPrincipals: [],
      operators: ['sovra-operators'],
    })
  })

  it('resolves a relative jwks from the config folder, keeps URLs, and takes claim names and anonymous access', () => {
    const { project, warnings } = load(`
[auth]
jwks = "keys/jwks.json"
issuer = "https://idp.bank.example"
audience = "sovra"
subject_claim = "email"
tenant_claim = "org"
`)
    expect(project.auth).toMatchObject({
      source: 'auth',
      jwks: join(project.dir, 'keys/jwks.json'),
      issuer: 'https://idp.bank.example',
      audience: 'sovra',
      allowAnonymous: false,
      claims: { subject: 'email', groups: 'groups', clearance: 'clearance', tenant: 'org' },
    })
    expect(warnings).toEqual([])
    expect(
      load('[auth]\njwks = "https://idp.bank.example/jwks.json"\nallow_anonymous = true\n').project.auth,
    ).toMatchObject({ jwks: 'https://idp.bank.example/jwks.json', allowAnonymous: true })
  })

  it('maps the deprecated [gateway] table onto [auth], with a warning', () => {
    const { project, warnings } = load(
      '[gateway]\njwks = "keys/jwks.json"\naudience = "sovra"\ngroups_claim = "roles"\nclearance_claim = "level"\n',
    )
    expect(project.auth).toMatchObject({
      source: 'gateway',
      jwks: join(project.dir, 'keys/jwks.json'),
      audience: 'sovra',
      claims: { subject: 'sub', groups: 'roles', clearance: 'level', tenant: 'tenant' },
    })
    expect(warnings).toEqual([
      expect.objectContaining({
        severity: 'warning',
        path: 'gateway',
        message: expect.stringMatching(/deprecated; rename the table to \[auth\]/),
      }),
    ])
  })

  it('resolves dev principals, the clearance defaulting to the lowest tier', () => {
    const { project } = load(`
[tiers]
order = ["open", "inner", "secret"]

[[auth.dev_principals]]
name = "alice"
groups = ["legal"]
clearance = "secret"
tenant = "bank-a"

[[auth.dev_principals]]
name = "bob"
`)
    expect(project.auth.devPrincipals).toEqual([
      { name: 'alice', groups: ['legal'], clearance: 'secret', tenant: 'bank-a' },
      { name: 'bob', groups: [], clearance: 'open' },
    ])
  })

  it('refuses a dev principal whose clearance is not a known tier, naming the valid tiers', () => {
    expect(configErrors('[[auth.dev_principals]]\nname = "alice"\nclearance = "top-secret"\n')).toEqual([
      {
        severity: 'error',
        file: expect.any(String),
        path: 'auth.dev_principals[0].clearance',
        message:
          'unknown tier "top-secret" for dev principal "alice"; valid tiers are: public, internal, confidential, restricted',
      },
    ])
  })

  it('refuses dev principals while jwks is set, duplicates, and a jwks file that does not exist', () => {
    const both = configErrors(
      '[auth]\njwks = "keys/jwks.json"\n[[auth.dev_principals]]\nname = "alice"\n[[auth.dev_principals]]\nname = "alice"\n',
    )
    expect(both.map((d) => d.path)).toEqual(['auth.dev_principals[1].name', 'auth.dev_principals'])
    expect(both[1]?.message).toMatch(/dev principals \(alice, alice\) cannot be used while \[auth\] jwks is set/)
    const missing = configErrors('[auth]\njwks = "nope.json"\n')
    expect(missing).toEqual([
      expect.objectContaining({
        path: 'auth.jwks',
        message: expect.stringMatching(/^JWKS file not found: .*nope\.json \(from jwks = "nope\.json"\)/),
      }),
    ])
  })

  it('validates the table itself with the key path', () => {
    const errors = configErrors('[auth]\nallow_anonymous = "yes"\n')
    expect(errors[0]?.path).toBe('auth.allow_anonymous')
  })
})
