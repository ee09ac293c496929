import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  AclError,
  aclFromBucket,
  aclKeysFor,
  aclPrefixesAffected,
  inAclScope,
  mayRead,
  parseAclFile,
  readDecision,
  resolveAcl,
  type EffectiveAcl,
} from '../../../infra/index/acl.ts'
import { FsBucket } from '../../../infra/storage/fs-bucket.ts'
import { isSovraError } from '../../../runtime/core/errors.ts'
import { TierOrder } from '../../../runtime/core/tiers.ts'

const DIR = mkdtempSync(join(tmpdir(), 'sovra-acl-'))
afterAll(() => rmSync(DIR, { recursive: true, force: true }))

const tiers = new TierOrder()

/** A readAclFile over an in-memory map of `_acl.json` keys to parsed JSON. */
function filesReader(files: Record<string, unknown>): (aclKey: string) => Promise<unknown> {
  return (aclKey) => Promise.resolve(Object.hasOwn(files, aclKey) ? files[aclKey] : undefined)
}

async function errorOf(promise: Promise<unknown>): Promise<AclError> {
  const e: unknown = await promise.then(
    () => undefined,
    (error: unknown) => error,
  )
  expect(e).toBeInstanceOf(AclError)
  return e as AclError
}

describe('aclKeysFor', () => {
  it('lists the ACL files up the key path, nearest first', () => {
    expect(aclKeysFor('docs/hr/leave/a.md')).toEqual([
      'docs/hr/leave/_acl.json',
      'docs/hr/_acl.json',
      'docs/_acl.json',
      '_acl.json',
    ])
    expect(aclKeysFor('a.md')).toEqual(['_acl.json'])
  })
})

describe('resolveAcl', () => {
  const files = {
    '_acl.json': { allow: ['everyone'], tier: 'public' },
    'docs/_acl.json': { allow: ['staff'], deny: ['contractors'], tier: 'internal' },
    'docs/hr/_acl.json': { allow: ['hr'], tier: 'confidential', owners: ['u-hr-lead'] },
  }

  it('takes the nearest _acl.json up the key path and names it as the source', async () => {
    const acl = await resolveAcl('docs/hr/leave/a.md', { readAclFile: filesReader(files), tiers })
    expect(acl).toEqual({
      allow: ['hr'],
      deny: [],
      owners: ['u-hr-lead'],
      tier: { name: 'confidential', rank: 2 },
      source: { file: 'docs/hr/_acl.json', metadata: [] },
    })
    const docs = await resolveAcl('docs/readme.md', { readAclFile: filesReader(files), tiers })
    expect(docs.source.file).toBe('docs/_acl.json')
    expect(docs.deny).toEqual(['contractors'])
    const root = await resolveAcl('other/x.txt', { readAclFile: filesReader(files), tiers })
    expect(root).toMatchObject({
      allow: ['everyone'],
      tier: { name: 'public', rank: 0 },
      source: { file: '_acl.json' },
    })
  })

  it('reads no file further up than the nearest one', async () => {
    const read: string[] = []
    await resolveAcl('docs/hr/leave/a.md', {
      readAclFile: (k) => (read.push(k), filesReader(files)(k)),
      tiers,
    })
    expect(read).toEqual(['docs/hr/leave/_acl.json', 'docs/hr/_acl.json'])
  })

  it('uses the nearest file whole: a field it omits is not inherited from an outer file', async () => {
    // docs/hr/_acl.json has no deny: the outer deny of contractors does not apply (the nearest file replaces).
    const acl = await resolveAcl('docs/hr/a.md', { readAclFile: filesReader(files), tiers })
    expect(acl.deny).toEqual([])
    const sparse = { ...files, 'docs/hr/_acl.json': { allow: ['hr'] } }
    const a = await resolveAcl('docs/hr/a.md', { readAclFile: filesReader(sparse), tiers, defaultTier: 'internal' })
    expect(a.tier).toEqual({ name: 'internal', rank: 1 })
    const b = await resolveAcl('docs/hr/a.md', { readAclFile: filesReader(sparse), tiers })
    expect(b.tier).toEqual({ name: 'restricted', rank: 3 })
  })

  it('overrides the file field by field with sovra-acl-* metadata (keys in any case, lists comma-separated)', async () => {
    const acl = await resolveAcl('docs/hr/a.md', {
      readAclFile: filesReader(files),
      tiers,
      metadata: { 'Sovra-Acl-Deny': ' interns , temps,', 'sovra-acl-tier': 'restricted', author: 'x' },
    })
    expect(acl).toEqual({
      allow: ['hr'],
      deny: ['interns', 'temps'],
      owners: ['u-hr-lead'],
      tier: { name: 'restricted', rank: 3 },
      source: { file: 'docs/hr/_acl.json', metadata: ['deny', 'tier'] },
    })
    const emptied = await resolveAcl('docs/hr/a.md', {
      readAclFile: filesReader(files),
      tiers,
      metadata: { 'sovra-acl-allow': '', 'sovra-acl-owners': 'u7' },
    })
    expect(emptied).toMatchObject({ allow: [], owners: ['u7'], source: { metadata: ['allow', 'owners'] } })
  })

  it('is deny-all when no _acl.json and no metadata say anything', async () => {
    const acl = await resolveAcl('docs/a.md', { readAclFile: filesReader({}), tiers })
    expect(acl).toEqual({
      allow: [],
      deny: [],
      owners: [],
      tier: { name: 'restricted', rank: 3 },
      source: { file: undefined, metadata: [] },
    })
    const top = { subject: 'root', groups: ['admins', 'hr'], clearance: 'restricted' }
    expect(mayRead(top, acl, tiers)).toBe(false)
    // Metadata alone can grant, over the deny-all default.
    const granted = await resolveAcl('docs/a.md', {
      readAclFile: filesReader({}),
      tiers,
      metadata: { 'sovra-acl-allow': 'hr' },
      defaultTier: 'internal',
    })
    expect(mayRead(top, granted, tiers)).toBe(true)
  })

  it('refuses to resolve an ACL file as a document', async () => {
    const e: unknown = await resolveAcl('docs/_acl.json', { readAclFile: filesReader({}), tiers }).catch((x) => x)
    expect(isSovraError(e) && e.code).toBe('ERR_USAGE')
  })
})

describe('bad ACLs', () => {
  it('names the file, every bad key path, the value and what is valid', async () => {
    const e = await errorOf(
      resolveAcl('docs/a.md', {
        readAclFile: filesReader({ 'docs/_acl.json': { allow: ['hr', 3, ' x'], denny: ['c'], tier: 'secret' } }),
        tiers,
      }),
    )
    expect(e.code).toBe('ERR_CONFIG')
    expect(e.message).toContain('Invalid ACL file "docs/_acl.json" (4 errors)')
    expect(e.message).toContain('docs/_acl.json: error: allow[1]: expected string, received 3')
    expect(e.message).toContain(
      'allow[2]: expected a non-empty name without commas or surrounding spaces, received " x"',
    )
    expect(e.message).toContain('denny: unknown key "denny"; valid keys are: allow, deny, tier, owners')
    expect(e.message).toContain(
      'tier: unknown tier "secret"; valid tiers are: public, internal, confidential, restricted',
    )
    expect(e.diagnostics.map((d) => d.path)).toEqual(['allow[1]', 'allow[2]', 'denny', 'tier'])
  })

  it('refuses a file that is not an object, an array included', () => {
    for (const value of [[], null, 'hr', 3]) {
      expect(() => parseAclFile('_acl.json', value, tiers)).toThrow(/_acl.json: error: \(root\): expected an object/)
    }
    expect(() => parseAclFile('_acl.json', { owners: 'u1' }, tiers)).toThrow(/owners: expected Array, received "u1"/)
  })

  it('refuses bad metadata: an unknown sovra-acl-* key, a repeated field, an unknown tier', async () => {
    const e = await errorOf(
      resolveAcl('docs/a.md', {
        readAclFile: filesReader({}),
        tiers,
        metadata: { 'sovra-acl-denny': 'x', 'sovra-acl-allow': 'a', 'Sovra-Acl-Allow': 'b', 'sovra-acl-tier': 'top' },
      }),
    )
    expect(e.message).toContain('Invalid ACL metadata of "docs/a.md" (3 errors)')
    expect(e.message).toContain('docs/a.md (metadata): error: sovra-acl-denny: unknown ACL metadata key')
    expect(e.message).toContain('"Sovra-Acl-Allow" repeats "sovra-acl-allow"')
    expect(e.message).toContain('sovra-acl-tier: unknown tier "top"; valid tiers are: public,')
  })
})

describe('aclFromBucket', () => {
  const bucket = new FsBucket('documents', join(DIR, 'buckets'))

  it('reads _acl.json objects and the object metadata, fresh on every call (a revocation applies at once)', async () => {
    await bucket.put('_acl.json', JSON.stringify({ allow: ['staff'], tier: 'internal' }))
    await bucket.put('policies/hr/_acl.json', JSON.stringify({ allow: ['hr', 'legal'], tier: 'confidential' }))
    await bucket.put('policies/hr/leave.md', '# Leave', { customMetadata: { 'sovra-acl-owners': 'u-author' } })
    const legal = { subject: 'u-legal', groups: ['legal'], clearance: 'confidential' }

    const before = await aclFromBucket(bucket, 'policies/hr/leave.md', tiers)
    expect(before).toMatchObject({
      allow: ['hr', 'legal'],
      owners: ['u-author'],
      source: { file: 'policies/hr/_acl.json', metadata: ['owners'] },
    })
    expect(mayRead(legal, before, tiers)).toBe(true)

    await bucket.put('policies/hr/_acl.json', JSON.stringify({ allow: ['hr'], tier: 'confidential' }))
    const after = await aclFromBucket(bucket, 'policies/hr/leave.md', tiers)
    expect(mayRead(legal, after, tiers)).toBe(false)

    await bucket.delete('policies/hr/_acl.json')
    const inherited = await aclFromBucket(bucket, 'policies/hr/leave.md', tiers)
    expect(inherited.source.file).toBe('_acl.json')
  })

  it('uses metadata the caller already has instead of a head', async () => {
    const acl = await aclFromBucket(bucket, 'not/stored.md', tiers, { metadata: { 'sovra-acl-allow': 'x' } })
    expect(acl.allow).toEqual(['x'])
  })

  it('says which object is missing', async () => {
    const e: unknown = await aclFromBucket(bucket, 'gone.md', tiers).catch((x) => x)
    expect(isSovraError(e) && e.code).toBe('ERR_NOT_FOUND')
  })

  it('refuses an _acl.json that is not JSON, or too large, naming it', async () => {
    await bucket.put('broken/_acl.json', '{"allow": ["hr",]}')
    await bucket.put('broken/a.md', 'x')
    const e = await errorOf(aclFromBucket(bucket, 'broken/a.md', tiers))
    expect(e.code).toBe('ERR_CONFIG')
    expect(e.message).toMatch(/broken\/_acl.json: error: \(root\): not valid JSON \(.+\); expected an object like/)

    await bucket.put('huge/_acl.json', JSON.stringify({ allow: Array.from({ length: 20_000 }, (_, i) => `g${i}`) }))
    const big = await errorOf(aclFromBucket(bucket, 'huge/a.md', tiers, { metadata: {} }))
    expect(big.message).toMatch(
      /huge\/_acl.json: error: \(root\): the file is \d+ bytes; an ACL file may be at most 65536/,
    )
  })
})

describe('mayRead', () => {
  const acl = (fields: Partial<Pick<EffectiveAcl, 'allow' | 'deny' | 'owners'>> & { tier?: string }) => ({
    allow: fields.allow ?? [],
    deny: fields.deny ?? [],
    owners: fields.owners ?? [],
    tier: { name: fields.tier ?? 'internal', rank: tiers.rank(fields.tier ?? 'internal') },
  })
  const hr = { subject: 'u1', groups: ['staff', 'hr'], clearance: 'confidential' }

  it('allows by group, lets deny win, and needs a clearance at least the tier', () => {
    expect(readDecision(hr, acl({ allow: ['hr'] }), tiers)).toEqual({ allowed: true, reason: 'allowed-group' })
    expect(readDecision(hr, acl({ allow: ['hr'], deny: ['staff'] }), tiers)).toEqual({
      allowed: false,
      reason: 'denied-group',
    })
    expect(mayRead(hr, acl({ allow: ['hr'], tier: 'confidential' }), tiers)).toBe(true)
    expect(readDecision(hr, acl({ allow: ['hr'], tier: 'restricted' }), tiers).reason).toBe('below-tier')
    expect(readDecision(hr, acl({ allow: ['eng'] }), tiers).reason).toBe('not-granted')
  })

  it('grants owners by subject, but not over deny or tier, and never to the anonymous principal', () => {
    expect(readDecision(hr, acl({ owners: ['u1'] }), tiers).reason).toBe('owner')
    expect(mayRead(hr, acl({ owners: ['u1'], deny: ['hr'] }), tiers)).toBe(false)
    expect(mayRead(hr, acl({ owners: ['u1'], tier: 'restricted' }), tiers)).toBe(false)
    const anonymous = { subject: 'anonymous', groups: [], clearance: 'public', anonymous: true }
    expect(mayRead(anonymous, acl({ owners: ['anonymous'], tier: 'public' }), tiers)).toBe(false)
  })

  it('refuses a clearance or a tier the tier order does not know', () => {
    expect(mayRead({ ...hr, clearance: 'top-secret' }, acl({ allow: ['hr'] }), tiers)).toBe(false)
    expect(mayRead(hr, { ...acl({ allow: ['hr'] }), tier: { name: 'x', rank: 0 } }, tiers)).toBe(false)
  })
})

describe('aclPrefixesAffected', () => {
  it('gives the changed file folder, without sub-folders that have their own _acl.json', () => {
    const others = ['docs/hr/leave/_acl.json', 'docs/hr/leave/old/_acl.json', 'docs/eng/_acl.json', '_acl.json']
    const scope = aclPrefixesAffected('docs/hr/_acl.json', others)
    expect(scope).toEqual({ prefix: 'docs/hr/', except: ['docs/hr/leave/'] })
    expect(aclPrefixesAffected('_acl.json', others)).toEqual({ prefix: '', except: ['docs/eng/', 'docs/hr/leave/'] })
    expect(aclPrefixesAffected('docs/a.md')).toBeUndefined()
    if (scope === undefined) throw new Error('unreachable')
    expect(inAclScope(scope, 'docs/hr/a.md')).toBe(true)
    expect(inAclScope(scope, 'docs/hr/leave/a.md')).toBe(false)
    expect(inAclScope(scope, 'docs/hrx/a.md')).toBe(false)
    expect(inAclScope(scope, 'docs/hr/_acl.json')).toBe(false)
  })
})

// ---- Property tests: random trees against a brute-force reference written here, not derived from acl.ts. ----

/** mulberry32: a small seeded PRNG, so a failure reproduces from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const GROUPS = ['hr', 'eng', 'legal', 'finance', 'contractors', 'staff']
const SUBJECTS = ['u1', 'u2', 'u3', 'u4']
const FOLDERS = ['a', 'b', 'hr', 'x']

interface Tree {
  files: Record<string, { allow?: string[]; deny?: string[]; tier?: string; owners?: string[] }>
  docs: Array<{ key: string; metadata: Record<string, string> }>
}

function randomTree(rand: () => number): Tree {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T
  const subset = <T>(xs: readonly T[]): T[] => xs.filter(() => rand() < 0.3)
  const folder = (): string => Array.from({ length: Math.floor(rand() * 4) }, () => pick(FOLDERS)).join('/')
  const randomAcl = () => {
    const acl: Tree['files'][string] = {}
    if (rand() < 0.8) acl.allow = subset(GROUPS)
    if (rand() < 0.5) acl.deny = subset(GROUPS)
    if (rand() < 0.7) acl.tier = pick(tiers.names)
    if (rand() < 0.4) acl.owners = subset(SUBJECTS)
    return acl
  }
  const files: Tree['files'] = {}
  for (let i = Math.floor(rand() * 8); i > 0; i--) {
    const f = folder()
    files[f === '' ? '_acl.json' : `${f}/_acl.json`] = randomAcl()
  }
  const docs: Tree['docs'] = []
  for (let i = 0; i < 25; i++) {
    const f = folder()
    const metadata: Record<string, string> = {}
    if (rand() < 0.3) {
      const acl = randomAcl()
      for (const [k, value] of Object.entries(acl)) {
        const name = rand() < 0.5 ? `sovra-acl-${k}` : `SOVRA-ACL-${k.toUpperCase()}`
        metadata[name] = Array.isArray(value) ? value.join(rand() < 0.5 ? ',' : ' , ') : value
      }
    }
    if (rand() < 0.2) metadata['author'] = pick(SUBJECTS)
    docs.push({ key: `${f === '' ? '' : `${f}/`}doc${i}.md`, metadata })
  }
  return { files, docs }
}

/** The reference: scan every file for the longest folder prefix; merge metadata; decide by the rules as written. */
function referenceMayRead(
  tree: Tree,
  doc: Tree['docs'][number],
  p: { subject: string; groups: string[]; clearance: string; anonymous?: boolean },
  defaultTier: string,
): boolean {
  let best: { folder: string; acl: Tree['files'][string] } | undefined
  for (const [key, acl] of Object.entries(tree.files)) {
    const folder = key.slice(0, key.length - '_acl.json'.length)
    if (doc.key.startsWith(folder) && (best === undefined || folder.length > best.folder.length)) best = { folder, acl }
  }
  const fields: Record<string, string | string[] | undefined> = { ...best?.acl }
  for (const [name, value] of Object.entries(doc.metadata)) {
    const m = /^sovra-acl-(.+)$/i.exec(name)
    if (m?.[1] === undefined) continue
    const field = m[1].toLowerCase()
    fields[field] =
      field === 'tier'
        ? value.trim()
        : value
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
  }
  const list = (f: string): string[] => (Array.isArray(fields[f]) ? (fields[f] as string[]) : [])
  const tier = typeof fields['tier'] === 'string' ? fields['tier'] : defaultTier
  if (p.groups.some((g) => list('deny').includes(g))) return false
  if (tiers.names.indexOf(p.clearance) < tiers.names.indexOf(tier)) return false
  return p.groups.some((g) => list('allow').includes(g)) || (!p.anonymous && list('owners').includes(p.subject))
}

describe('resolveAcl + mayRead (property)', () => {
  it('agrees with a brute-force reference on random trees of _acl.json and random principals', async () => {
    let checked = 0
    let allowed = 0
    for (let seed = 1; seed <= 300; seed++) {
      const rand = rng(seed)
      const tree = randomTree(rand)
      const defaultTier = seed % 2 === 0 ? 'internal' : 'restricted'
      const principals = Array.from({ length: 12 }, () => ({
        subject: SUBJECTS[Math.floor(rand() * SUBJECTS.length)] ?? 'u1',
        groups: GROUPS.filter(() => rand() < 0.3),
        clearance: tiers.names[Math.floor(rand() * tiers.names.length)] ?? 'public',
        ...(rand() < 0.1 ? { anonymous: true } : {}),
      }))
      for (const doc of tree.docs) {
        const acl = await resolveAcl(doc.key, {
          readAclFile: filesReader(tree.files),
          metadata: doc.metadata,
          tiers,
          defaultTier,
        })
        expect(acl.tier.rank, `seed ${seed} ${doc.key}`).toBe(tiers.rank(acl.tier.name))
        for (const p of principals) {
          const got = mayRead(p, acl, tiers)
          expect(got, `seed ${seed} ${doc.key} ${JSON.stringify(p)}`).toBe(referenceMayRead(tree, doc, p, defaultTier))
          checked++
          if (got) allowed++
        }
      }
    }
    // The generator must produce both outcomes in quantity, or the comparison proves little.
    expect(checked).toBe(300 * 25 * 12)
    expect(allowed).toBeGreaterThan(checked * 0.05)
    expect(allowed).toBeLessThan(checked * 0.95)
  })

  it('an _acl.json change alters only ACLs of documents in aclPrefixesAffected', async () => {
    let changedDocs = 0
    for (let seed = 1; seed <= 200; seed++) {
      const rand = rng(seed * 7919)
      const tree = randomTree(rand)
      const keys = Object.keys(tree.files)
      // Change an existing file (edit or removal), or add one at a document's folder.
      const doc = tree.docs[Math.floor(rand() * tree.docs.length)]
      const target =
        keys.length > 0 && rand() < 0.6
          ? (keys[Math.floor(rand() * keys.length)] ?? '_acl.json')
          : (aclKeysFor(doc?.key ?? 'x')[0] ?? '_acl.json')
      const after: Tree['files'] = { ...tree.files }
      if (Object.hasOwn(after, target) && rand() < 0.4) delete after[target]
      else after[target] = { allow: ['changed'], tier: 'public' }
      const scope = aclPrefixesAffected(target, [...keys, ...Object.keys(after)])
      if (scope === undefined) throw new Error(`not an ACL key: ${target}`)
      for (const d of tree.docs) {
        const read = async (files: Tree['files']) =>
          resolveAcl(d.key, { readAclFile: filesReader(files), metadata: d.metadata, tiers })
        const [a, b] = [await read(tree.files), await read(after)]
        if (JSON.stringify(a) !== JSON.stringify(b)) {
          changedDocs++
          expect(inAclScope(scope, d.key), `seed ${seed}: ${target} changed ${d.key}`).toBe(true)
        }
      }
    }
    expect(changedDocs).toBeGreaterThan(100)
  })
})
