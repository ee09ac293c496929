import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { generateKey, loadKey, type SigningKey } from '../../../infra/registry/keys.ts'
import { parseRef, Registry } from '../../../infra/registry/registry.ts'
import { trustPolicy, type TrustPolicy } from '../../../infra/registry/trust.ts'
import { FsBucket } from '../../../infra/storage/fs-bucket.ts'
import { isSovraError } from '../../../runtime/core/errors.ts'

let dir: string
let key: SigningKey
let other: SigningKey
let trust: TrustPolicy
let registry: Registry
let bucket: FsBucket
let model: string

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  )
  if (!isSovraError(e)) throw new Error(`expected a SovraError, got ${String(e)}`)
  return { code: e.code, message: e.message }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sovra-registry-'))
  key = generateKey(join(dir, 'keys'), 'ml-team')
  other = generateKey(join(dir, 'keys'), 'intruder')
  trust = trustPolicy([{ name: 'ml-team', public_key: key.publicKey, kinds: ['model'] }])
  bucket = new FsBucket('sovra-artifacts', join(dir, 'buckets'))
  registry = new Registry(bucket)
  model = join(dir, 'qa.gguf')
  writeFileSync(model, Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 31) % 256)))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('keys', () => {
  it('writes the private key with mode 0600, prints a base64 public key, and never overwrites', () => {
    expect(statSync(join(dir, 'keys', 'ml-team.key')).mode & 0o777).toBe(0o600)
    expect(Buffer.from(key.publicKey, 'base64')).toHaveLength(32)
    expect(readFileSync(join(dir, 'keys', 'ml-team.pub'), 'utf8').trim()).toBe(key.publicKey)
    expect(loadKey(join(dir, 'keys'), 'ml-team').keyid).toBe(key.keyid)
    expect(() => generateKey(join(dir, 'keys'), 'ml-team')).toThrow(/already exists/)
  })
})

describe('Registry', () => {
  let ref: string
  it('pushes a model by sha256 with a signed manifest and verifies it', async () => {
    const pushed = await registry.push(
      model,
      {
        kind: 'model',
        name: 'qa-ja',
        version: '1.0.0',
        createdBy: 'alice',
        lineage: [`sha256:${'a'.repeat(64)}`],
        legalBasis: 'contract',
      },
      key,
    )
    const sha = createHash('sha256').update(readFileSync(model)).digest('hex')
    ref = pushed.ref
    expect(ref).toBe(`registry:qa-ja@sha256:${sha}`)
    const v = await registry.verify(ref, 'model', trust)
    expect(v).toMatchObject({
      signer: 'ml-team',
      keyid: key.keyid,
      manifest: {
        name: 'qa-ja',
        version: '1.0.0',
        created_by: 'alice',
        legal_basis: 'contract',
        subjects: [{ name: 'qa.gguf', sha256: sha, size: 300_000 }],
      },
    })
    expect((await registry.verify('registry:qa-ja:latest', 'model', trust)).manifest.version).toBe('1.0.0')
    expect((await registry.list('model')).map((m) => m.manifest.version)).toEqual(['1.0.0'])
  })

  it('refuses a re-push of the same version (immutable)', async () => {
    expect(
      (await refusal(registry.push(model, { kind: 'model', name: 'qa-ja', version: '1.0.0', createdBy: 'alice' }, key)))
        .message,
    ).toMatch(/versions are immutable/)
  })

  it('refuses a manifest signed by an unknown key, naming it', async () => {
    const m2 = join(dir, 'other.gguf')
    writeFileSync(m2, 'other model')
    const { ref: r2 } = await registry.push(m2, { kind: 'model', name: 'rogue', createdBy: 'mallory' }, other)
    const e = await refusal(registry.verify(r2, 'model', trust))
    expect(e.code).toBe('ERR_SIGNATURE')
    expect(e.message).toContain(`unknown key ${other.keyid}`)
    expect(e.message).toContain(key.keyid)
  })

  it('refuses a key trusted for another kind', async () => {
    const bundleOnly = trustPolicy([{ name: 'ci', public_key: key.publicKey, kinds: ['bundle'] }])
    expect((await refusal(registry.verify(ref, 'model', bundleOnly))).code).toBe('ERR_SIGNATURE')
  })

  it('detects a one-byte change in the stored model, naming expected and actual digests', async () => {
    const sha = parseRef(ref).digest as string
    const bytes = readFileSync(model)
    bytes[1234] = (bytes[1234] as number) ^ 1
    await bucket.put(`blobs/sha256/${sha}`, bytes)
    const e = await refusal(registry.verify(ref, 'model', trust))
    expect(e.code).toBe('ERR_SIGNATURE')
    expect(e.message).toContain(`expected sha256 ${sha}`)
    expect(e.message).toContain(createHash('sha256').update(bytes).digest('hex'))
    await bucket.put(`blobs/sha256/${sha}`, readFileSync(model))
    await registry.verify(ref, 'model', trust)
  })

  it('detects an edited manifest (the signature no longer verifies)', async () => {
    const keyName = 'manifests/model/qa-ja/1.0.0.json'
    const original = await (await bucket.get(keyName))!.text()
    const env = JSON.parse(original) as { payload: string }
    const manifest = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as { created_by: string }
    manifest.created_by = 'someone-else'
    await bucket.put(
      keyName,
      JSON.stringify({ ...env, payload: Buffer.from(JSON.stringify(manifest)).toString('base64') }),
    )
    expect((await refusal(registry.verify(ref, 'model', trust))).message).toMatch(
      /does not verify: the manifest was changed after signing/,
    )
    await bucket.put(keyName, original)
  })

  it('materializes a verified blob to a local file, checking its digest', async () => {
    const sha = parseRef(ref).digest as string
    const path = await registry.materialize(sha, join(dir, 'cache', `${sha}.gguf`))
    expect(createHash('sha256').update(readFileSync(path)).digest('hex')).toBe(sha)
  })

  it('refuses to materialize a blob whose stored bytes changed, leaving no file behind', async () => {
    const sha = parseRef(ref).digest as string
    const bytes = readFileSync(model)
    bytes[4321] = (bytes[4321] as number) ^ 1
    await bucket.put(`blobs/sha256/${sha}`, bytes)
    const cache = join(dir, 'cache-tampered')
    try {
      const e = await refusal(registry.materialize(sha, join(cache, `${sha}.gguf`)))
      expect(e.code).toBe('ERR_SIGNATURE')
      expect(e.message).toContain(sha)
      expect(e.message).toContain(createHash('sha256').update(bytes).digest('hex'))
      // Neither the file nor its temporary copy is left: an engine must never load the tampered bytes.
      expect(readdirSync(cache)).toEqual([])
    } finally {
      await bucket.put(`blobs/sha256/${sha}`, readFileSync(model))
    }
    const path = await registry.materialize(sha, join(cache, `${sha}.gguf`))
    expect(readdirSync(cache)).toEqual([`${sha}.gguf`])
    expect(createHash('sha256').update(readFileSync(path)).digest('hex')).toBe(sha)
  })

  it('parses references and explains the valid forms', () => {
    expect(parseRef('registry:qa:latest')).toEqual({ name: 'qa', alias: 'latest' })
    expect(() => parseRef('qa@sha256:123')).toThrow(/expected registry:NAME@sha256:<64 hex> or registry:NAME:alias/)
  })
})
