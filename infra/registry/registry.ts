import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import * as v from 'valibot'

import { SovraError } from '../../runtime/core/errors.ts'
import type { Bucket } from '../../runtime/core/ports.ts'
import { sha256File } from '../pools/model-file.ts'
import { openEnvelope, signEnvelope, type Envelope } from './dsse.ts'
import type { SigningKey } from './keys.ts'
import { ManifestSchema, type ArtifactKind, type Manifest } from './manifest.ts'
import type { TrustPolicy } from './trust.ts'

/** The bucket artifacts live in (fs under the state folder, or MinIO). */
export const ARTIFACTS_BUCKET = 'sovra-artifacts'

/** A parsed registry reference: `registry:NAME@sha256:<hex>` or `registry:NAME:alias`. */
export type RegistryRef =
  { name: string; digest: string; alias?: undefined } | { name: string; alias: string; digest?: undefined }

/**
 * Parses a registry reference; ERR_BAD_REQUEST with the valid forms when it is not one.
 * @param ref the reference
 */
export function parseRef(ref: string): RegistryRef {
  const m = /^registry:([a-z0-9][a-z0-9._-]{0,127})(?:@sha256:([0-9a-f]{64})|:([A-Za-z0-9._-]{1,128}))$/.exec(ref)
  if (m === null)
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `not a registry reference: ${JSON.stringify(ref)}; expected registry:NAME@sha256:<64 hex> or registry:NAME:alias (e.g. registry:qa-ja:latest)`,
    )
  return m[2] !== undefined ? { name: m[1] as string, digest: m[2] } : { name: m[1] as string, alias: m[3] as string }
}

/** What a verification established. */
export interface Verified {
  manifest: Manifest
  keyid: string
  signer: string
  /** The manifest's own key in the bucket. */
  key: string
}

async function hashStream(body: ReadableStream<Uint8Array>): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(chunk)
    size += chunk.byteLength
  }
  return { sha256: hash.digest('hex'), size }
}

/**
 * The artifact registry over a bucket: blobs by sha256 (`blobs/sha256/<hex>`), DSSE-signed manifests
 * (`manifests/<kind>/<name>/<version>.json`), aliases (`refs/<kind>/<name>/<alias>` -> version) and an index by
 * digest (`index/<hex>` -> manifest key). Verification recomputes every digest from the stored bytes.
 */
export class Registry {
  /** @param bucket the artifacts bucket */
  constructor(private readonly bucket: Bucket) {}

  /**
   * Stores a file and a signed manifest for it; returns the manifest and `registry:NAME@sha256:<hex>`.
   * @param file the artifact file (hashed while streaming; a 100 MB model is never held in memory)
   * @param meta kind, name, version, author, lineage, legal basis, retention
   * @param key the signing key
   */
  async push(
    file: string,
    meta: {
      kind: ArtifactKind
      name: string
      version?: string | undefined
      createdBy: string
      lineage?: readonly string[]
      legalBasis?: string | undefined
      retention?: string | undefined
    },
    key: SigningKey,
  ): Promise<{ ref: string; manifest: Manifest; key: string }> {
    const size = (await stat(file)).size
    const sha256 = await sha256File(file)
    const blobKey = `blobs/sha256/${sha256}`
    if ((await this.bucket.head(blobKey)) === null) {
      await this.bucket.put(blobKey, Readable.toWeb(createReadStream(file)) as unknown as ReadableStream<Uint8Array>, {
        httpMetadata: { contentType: 'application/octet-stream' },
      })
    }
    const manifest = v.parse(ManifestSchema, {
      schema: 'sovra.manifest/v1',
      kind: meta.kind,
      name: meta.name,
      version: meta.version ?? sha256.slice(0, 12),
      subjects: [{ name: basename(file), sha256, size }],
      created_by: meta.createdBy,
      created_at: new Date().toISOString(),
      lineage: [...(meta.lineage ?? [])],
      ...(meta.legalBasis === undefined ? {} : { legal_basis: meta.legalBasis }),
      ...(meta.retention === undefined ? {} : { retention: meta.retention }),
    })
    const manifestKey = `manifests/${meta.kind}/${meta.name}/${manifest.version}.json`
    if ((await this.bucket.head(manifestKey)) !== null)
      throw new SovraError(
        'ERR_USAGE',
        `${meta.kind} ${meta.name} version ${manifest.version} already exists; versions are immutable: push with another --version`,
      )
    await this.bucket.put(manifestKey, JSON.stringify(signEnvelope(manifest, key.privateKey, key.keyid)))
    await this.bucket.put(`refs/${meta.kind}/${meta.name}/latest`, manifest.version)
    await this.bucket.put(`index/${sha256}`, manifestKey)
    return { ref: `registry:${meta.name}@sha256:${sha256}`, manifest, key: manifestKey }
  }

  /**
   * Every manifest of a kind (unverified; for listings).
   * @param kind the kind
   */
  async list(kind: ArtifactKind): Promise<Array<{ key: string; manifest: Manifest; signers: string[] }>> {
    const out: Array<{ key: string; manifest: Manifest; signers: string[] }> = []
    let cursor: string | undefined
    do {
      const page = await this.bucket.list({ prefix: `manifests/${kind}/`, ...(cursor === undefined ? {} : { cursor }) })
      for (const o of page.objects) {
        const env = JSON.parse((await (await this.bucket.get(o.key))?.text()) ?? '{}') as Envelope
        out.push({
          key: o.key,
          manifest: JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as Manifest,
          signers: env.signatures.map((s) => s.keyid),
        })
      }
      cursor = page.truncated ? page.cursor : undefined
    } while (cursor !== undefined)
    return out.sort((a, b) => a.manifest.created_at.localeCompare(b.manifest.created_at))
  }

  /** The manifest key a reference points at; ERR_NOT_FOUND naming the reference. */
  async manifestKey(ref: string, kind: ArtifactKind): Promise<string> {
    const r = parseRef(ref)
    if (r.digest !== undefined) {
      const key = await (await this.bucket.get(`index/${r.digest}`))?.text()
      if (key === undefined || !key.startsWith(`manifests/${kind}/${r.name}/`))
        throw new SovraError('ERR_NOT_FOUND', `${ref}: no ${kind} ${r.name} with that digest in the registry`)
      return key
    }
    const version = await (await this.bucket.get(`refs/${kind}/${r.name}/${r.alias}`))?.text()
    if (version === undefined)
      throw new SovraError(
        'ERR_NOT_FOUND',
        `${ref}: no alias ${JSON.stringify(r.alias)} for ${kind} ${r.name} in the registry`,
      )
    return `manifests/${kind}/${r.name}/${version}.json`
  }

  /**
   * Verifies a reference: the manifest's signature by a key the policy trusts for the kind, then every subject's
   * digest and size recomputed from the stored blob. ERR_SIGNATURE names the artifact and the expected and actual
   * digest, or the unknown key.
   * @param ref the reference
   * @param kind the artifact kind
   * @param trust the trust policy
   */
  async verify(ref: string, kind: ArtifactKind, trust: TrustPolicy): Promise<Verified> {
    const key = await this.manifestKey(ref, kind)
    const text = await (await this.bucket.get(key))?.text()
    if (text === undefined) throw new SovraError('ERR_NOT_FOUND', `${ref}: manifest ${key} is missing`)
    const { payload, keyid } = openEnvelope(JSON.parse(text) as Envelope, trust.forKind(kind), `${kind} ${ref}`)
    const manifest = v.parse(ManifestSchema, payload)
    const wanted = parseRef(ref)
    for (const s of manifest.subjects) {
      if (wanted.digest !== undefined && s.sha256 !== wanted.digest)
        throw new SovraError(
          'ERR_SIGNATURE',
          `${kind} ${ref}: the signed manifest names sha256 ${s.sha256}, not the requested ${wanted.digest}`,
        )
      const blob = await this.bucket.get(`blobs/sha256/${s.sha256}`)
      if (blob === null)
        throw new SovraError(
          'ERR_SIGNATURE',
          `${kind} ${ref}: blob ${s.sha256} (${s.name}) is missing from the registry`,
        )
      const actual = await hashStream(blob.body as ReadableStream<Uint8Array>)
      if (actual.sha256 !== s.sha256 || actual.size !== s.size) {
        throw new SovraError(
          'ERR_SIGNATURE',
          `${kind} ${ref}: ${s.name} was tampered with: expected sha256 ${s.sha256} (${s.size} bytes), stored bytes hash to ${actual.sha256} (${actual.size} bytes)`,
        )
      }
    }
    return { manifest, keyid, signer: trust.nameOf(keyid), key }
  }

  /**
   * Copies a verified blob to a local file (for engines that load from a path), checking its digest while writing;
   * a cached copy with the right digest is reused.
   * @param sha256 the blob's digest
   * @param dest the local path
   */
  async materialize(sha256: string, dest: string): Promise<string> {
    if ((await stat(dest).catch(() => undefined)) !== undefined && (await sha256File(dest)) === sha256) return dest
    const blob = await this.bucket.get(`blobs/sha256/${sha256}`)
    if (blob === null) throw new SovraError('ERR_NOT_FOUND', `blob ${sha256} is missing from the registry`)
    await mkdir(dirname(dest), { recursive: true })
    const tmp = `${dest}.tmp-${process.pid}`
    const hash = createHash('sha256')
    const source = Readable.fromWeb(blob.body as never).on('data', (c: Buffer) => hash.update(c))
    await pipeline(source, createWriteStream(tmp))
    const got = hash.digest('hex')
    if (got !== sha256) {
      await rm(tmp, { force: true })
      throw new SovraError('ERR_SIGNATURE', `blob ${sha256} changed while copying: the bytes hash to ${got}`)
    }
    await rename(tmp, dest)
    return dest
  }
}
