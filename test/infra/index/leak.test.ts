import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { openPglite } from '../../../infra/db/pglite.ts'
import { mayRead, resolveAcl, type EffectiveAcl } from '../../../infra/index/acl.ts'
import { ensureIndexSchema } from '../../../infra/index/schema.ts'
import { indexStore, type IndexChunk, type IndexPrincipal, type IndexStore } from '../../../infra/index/store.ts'
import { TierOrder } from '../../../runtime/core/tiers.ts'
import type { Db } from '../../../runtime/core/ports.ts'

// Issue 12's leak test: random documents under random nested `_acl.json` files and metadata, random principals,
// every kind of read; an independent oracle (`mayRead` over the ACL resolved in this process) must allow every
// chunk the store returns. `getByIds` of every id must return exactly what the oracle allows (both directions).

const TIERS = new TierOrder(['public', 'internal', 'confidential', 'restricted'])
const GROUPS = ['hr', 'legal', 'finance', 'it', 'sales', 'audit', 'board', 'ops']
const USERS = Array.from({ length: 10 }, (_, i) => `u${i}`)
const FOLDERS = ['', 'policies/', 'policies/hr/', 'policies/hr/leave/', 'policies/legal/', 'finance/', 'finance/q4/']
const WORDS = ['leave', 'deadline', 'policy', 'salary', 'contract', 'audit', '育児休業', '申請', '期限', '人事部']
const DIMS = 8
const PRINCIPALS = 200
const QUERIES = 50

/** A small seeded PRNG (mulberry32): the same run every time, and a failure can be replayed. */
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

describe('no chunk reaches a principal the ACL oracle refuses (200 principals x 50 reads)', () => {
  const random = rng(12)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T
  const some = <T>(xs: readonly T[], p: number): T[] => xs.filter(() => random() < p)
  let db: Db
  let store: IndexStore
  const docAcl = new Map<string, EffectiveAcl>()
  const chunkDoc = new Map<string, string>()

  beforeAll(async () => {
    db = await openPglite()
    await ensureIndexSchema(db, { name: 'leak', dimensions: DIMS, vector: true })
    store = await indexStore(db, { name: 'leak', dimensions: DIMS, vector: true })
    // Random `_acl.json` files at random folders (the root one sometimes missing: deny-all by default).
    const aclFiles = new Map<string, unknown>()
    for (const folder of FOLDERS) {
      if (random() < 0.35) continue
      const file: Record<string, unknown> = { allow: some(GROUPS, 0.3) }
      if (random() < 0.5) file['deny'] = some(GROUPS, 0.15)
      if (random() < 0.7) file['tier'] = pick(TIERS.names)
      if (random() < 0.4) file['owners'] = some(USERS, 0.2)
      aclFiles.set(`${folder}_acl.json`, file)
    }
    const chunks: IndexChunk[] = []
    for (let d = 0; d < 80; d++) {
      const key = `${pick(FOLDERS)}doc-${d}.md`
      const metadata: Record<string, string> = {}
      if (random() < 0.2) metadata['sovra-acl-allow'] = some(GROUPS, 0.3).join(',')
      if (random() < 0.1) metadata['sovra-acl-deny'] = some(GROUPS, 0.2).join(',')
      if (random() < 0.15) metadata['sovra-acl-tier'] = pick(TIERS.names)
      if (random() < 0.1) metadata['sovra-acl-owners'] = some(USERS, 0.2).join(',')
      const acl = await resolveAcl(key, {
        readAclFile: async (k) => aclFiles.get(k),
        metadata,
        tiers: TIERS,
        defaultTier: 'internal',
      })
      docAcl.set(key, acl)
      for (let c = 0; c < 3; c++) {
        const id = `${key}#${c}`
        chunkDoc.set(id, key)
        chunks.push({
          id,
          text: Array.from({ length: 12 }, () => pick(WORDS)).join(' '),
          values: Array.from({ length: DIMS }, () => random() * 2 - 1),
          bucket: 'documents',
          key,
          etag: `e${d}`,
          ordinal: c,
          acl: { allow: acl.allow, deny: acl.deny, tierRank: acl.tier.rank, owners: acl.owners },
        })
      }
    }
    await store.upsert(chunks)
  }, 120_000)
  afterAll(async () => {
    await db?.close()
  })

  it('every read, in every mode and with filters trying to widen, returns only permitted chunks', async () => {
    const ids = [...chunkDoc.keys()]
    let returned = 0
    let exactChecks = 0
    const leaks: string[] = []
    for (let p = 0; p < PRINCIPALS; p++) {
      const anonymous = random() < 0.1
      const subject = anonymous ? 'anonymous' : pick(USERS)
      const groups = anonymous ? [] : some(GROUPS, 0.25)
      const clearance = anonymous ? 'public' : pick(TIERS.names)
      const oracle = { subject, groups, clearance, ...(anonymous ? { anonymous: true } : {}) }
      // The binding passes no subject for the anonymous caller, so no `owners` entry can match it.
      const principal: IndexPrincipal = {
        subject: anonymous ? '' : subject,
        groups,
        clearanceRank: TIERS.names.indexOf(clearance),
      }
      const allowed = (id: string): boolean => mayRead(oracle, docAcl.get(chunkDoc.get(id) as string)!, TIERS)
      for (let q = 0; q < QUERIES; q++) {
        const kind = q % 5
        let got: string[]
        if (kind === 0) {
          // Both directions: exactly the permitted chunks, none missing, none extra.
          got = (await store.getByIds(ids, principal)).map((m) => m.id)
          expect(new Set(got)).toEqual(new Set(ids.filter(allowed)))
          exactChecks++
        } else {
          const topK = 5 + Math.floor(random() * 45)
          // A filter naming every key: it may only narrow, so it must not widen past the ACLs.
          const filter = random() < 0.5 ? { key: { $in: [...docAcl.keys()] } } : undefined
          const mode = (['text', 'vector', 'hybrid', 'vector'] as const)[kind - 1]!
          const vector = Array.from({ length: DIMS }, () => random() * 2 - 1)
          const res =
            mode === 'vector' && random() < 0.5
              ? await store.query(vector, { topK, principal, ...(filter === undefined ? {} : { filter }) })
              : await store.search({
                  text: pick(WORDS),
                  vector,
                  topK,
                  mode,
                  principal,
                  ...(filter === undefined ? {} : { filter }),
                })
          got = res.matches.map((m) => m.id)
        }
        returned += got.length
        for (const id of got) if (!allowed(id)) leaks.push(`${subject} [${groups.join(',')}] ${clearance}: ${id}`)
      }
    }
    expect(leaks).toEqual([])
    expect(exactChecks).toBe(PRINCIPALS * 10)
    // Not vacuous: principals did read chunks, and the corpus mixes readable and refused documents.
    expect(returned).toBeGreaterThan(10_000)
  }, 600_000)
})
