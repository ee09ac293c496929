/**
 * Signed checkpoints of the audit chain's head, kept outside the database (issue 11, R4): the chain alone cannot show
 * that its newest entries were deleted, that the table was emptied, or that it was rewritten and every hash
 * recomputed. A checkpoint is an ed25519 DSSE envelope over `{entries, head_id, head_hash, at}`, stored in the
 * artifacts bucket (MinIO with object lock in production) under `audit/checkpoints/<entries>.json`.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as v from 'valibot'

import { SovraError } from '../../runtime/core/errors.ts'
import type { Bucket } from '../../runtime/core/ports.ts'
import { pae, type Envelope } from '../registry/dsse.ts'
import { keyIdOf, type SigningKey } from '../registry/keys.ts'
import type { TrustPolicy } from '../registry/trust.ts'

/** The DSSE payload type of a checkpoint: a manifest signature can never pass for one, nor one for a manifest. */
export const CHECKPOINT_TYPE = 'application/vnd.sovra.audit-checkpoint+json'
/** Where checkpoints live in the artifacts bucket. */
export const CHECKPOINT_PREFIX = 'audit/checkpoints/'
/** A checkpoint every this many entries unless `SOVRA_AUDIT_CHECKPOINT_EVERY` says otherwise. */
export const DEFAULT_CHECKPOINT_EVERY = 100
/**
 * Entries checkpointed as soon as they are written, by the action's first dotted segment: who may sign (`key.*`,
 * `trust.*`), refused signatures, approvals, and every change of what code runs (`deploy`, `deploy.openwhisk`,
 * `canary`, `promote`, `rollback`, `pin`, `unpin`, and their `.openwhisk` forms).
 */
export const CHECKPOINT_ACTIONS = [
  'key',
  'trust',
  'signature',
  'approve',
  'deploy',
  'canary',
  'promote',
  'rollback',
  'pin',
  'unpin',
] as const

/** The head of the chain a checkpoint vouches for. */
export interface ChainHead {
  /** How many entries the chain had, this one included. */
  entries: number
  headId: number
  headHash: string
}

/** A checkpoint read back and verified. */
export interface Checkpoint extends ChainHead {
  /** When it was signed. */
  at: string
  keyid: string
  /** The signer's name: `host audit key` or its `[[trust]]` name. */
  signer: string
  /** Its object key in the bucket. */
  object: string
  /** The signer's raw public key, base64 (on checkpoints just written: what `[[trust]]` pins). */
  publicKey?: string
}

/** Writes and reads signed checkpoints. */
export interface AuditCheckpoints {
  /** A checkpoint every this many entries (by id). */
  readonly every: number
  /**
   * Whether an entry gets a checkpoint when written.
   * @param action the entry's action
   * @param id the entry's id
   */
  due(action: string, id: number): boolean
  /**
   * Signs and stores a checkpoint of a head.
   * @param head what it vouches for
   */
  write(head: ChainHead): Promise<Checkpoint>
  /** Every checkpoint whose signature verifies by a trusted key, by entries; what is wrong with the others. */
  read(): Promise<{ checkpoints: Checkpoint[]; problems: string[] }>
}

/** A key accepted for checkpoints. */
export interface CheckpointSigner {
  name: string
  key: KeyObject
}

const PayloadSchema = v.object({
  schema: v.literal('sovra.audit-checkpoint/v1'),
  entries: v.pipe(v.number(), v.integer(), v.minValue(1)),
  head_id: v.pipe(v.number(), v.integer(), v.minValue(1)),
  head_hash: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  at: v.pipe(v.string(), v.isoTimestamp()),
})

/**
 * The object key of the checkpoint of the first `entries` entries (zero-padded, so listing order is chain order).
 * @param entries how many entries it covers
 */
export function checkpointObject(entries: number): string {
  return `${CHECKPOINT_PREFIX}${String(entries).padStart(12, '0')}.json`
}

/**
 * Signs a checkpoint into a DSSE envelope.
 * @param head what it vouches for
 * @param at when
 * @param key the signing key
 */
export function signCheckpoint(head: ChainHead, at: string, key: SigningKey): Envelope {
  const body = Buffer.from(
    JSON.stringify({
      schema: 'sovra.audit-checkpoint/v1',
      entries: head.entries,
      head_id: head.headId,
      head_hash: head.headHash,
      at,
    }),
    'utf8',
  )
  return {
    payloadType: CHECKPOINT_TYPE,
    payload: body.toString('base64'),
    signatures: [{ keyid: key.keyid, sig: sign(null, pae(CHECKPOINT_TYPE, body), key.privateKey).toString('base64') }],
  }
}

/**
 * Opens a stored checkpoint: the envelope's type, a signature by a trusted key that verifies, and the payload's shape.
 * Returns the checkpoint, or what is wrong with it.
 * @param text the stored object's text
 * @param object its key in the bucket
 * @param trusted key id -> accepted signer
 */
export function openCheckpoint(
  text: string,
  object: string,
  trusted: ReadonlyMap<string, CheckpointSigner>,
): Checkpoint | string {
  let envelope: Envelope
  try {
    envelope = JSON.parse(text) as Envelope
  } catch {
    return `checkpoint ${object} is not JSON: it was overwritten`
  }
  if (envelope.payloadType !== CHECKPOINT_TYPE || !Array.isArray(envelope.signatures))
    return `checkpoint ${object} is not a signed checkpoint (payload type ${JSON.stringify(envelope.payloadType)}, expected ${CHECKPOINT_TYPE})`
  const body = Buffer.from(String(envelope.payload), 'base64')
  const known = envelope.signatures.filter((s) => trusted.has(s.keyid))
  if (known.length === 0) {
    const ids = envelope.signatures.map((s) => s.keyid).join(', ') || '(none)'
    return `checkpoint ${object} is signed by key ${ids}, which is not trusted for audit checkpoints; trusted: ${[...trusted.keys()].join(', ') || '(none)'} (another host's audit key is pinned with [[trust]] kinds = ["audit"])`
  }
  const good = known.find((s) =>
    verify(
      null,
      pae(CHECKPOINT_TYPE, body),
      (trusted.get(s.keyid) as CheckpointSigner).key,
      Buffer.from(s.sig, 'base64'),
    ),
  )
  if (good === undefined)
    return `checkpoint ${object}: the signature by key ${known.map((s) => s.keyid).join(', ')} does not verify: it was changed after signing`
  let payload: unknown
  try {
    payload = JSON.parse(body.toString('utf8'))
  } catch {
    return `checkpoint ${object}: the signed payload is not JSON`
  }
  const parsed = v.safeParse(PayloadSchema, payload)
  if (!parsed.success)
    return `checkpoint ${object}: the signed payload is not a checkpoint: ${parsed.issues.map((i) => `${v.getDotPath(i) ?? '(root)'}: ${i.message}`).join('; ')}`
  const p = parsed.output
  return {
    entries: p.entries,
    headId: p.head_id,
    headHash: p.head_hash,
    at: p.at,
    keyid: good.keyid,
    signer: (trusted.get(good.keyid) as CheckpointSigner).name,
    object,
  }
}

/**
 * The host's audit key, `<dir>/audit.key` (PKCS#8 PEM, 0600), created on first use. Created exclusively: two
 * processes starting at once end up with the same key, never one that overwrote the other's.
 * @param dir the folder (`<state>/keys`)
 */
export function hostAuditKey(dir: string): SigningKey {
  const file = join(dir, 'audit.key')
  const existing = readHostAuditKey(dir)
  if (existing !== undefined) return existing
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  // Written whole under a private name, then linked into place: link() fails if the key exists, and a reader never
  // sees a half-written file.
  const tmp = `${file}.${process.pid}.tmp`
  try {
    const { privateKey } = generateKeyPairSync('ed25519')
    writeFileSync(tmp, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 })
    linkSync(tmp, file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  } finally {
    rmSync(tmp, { force: true })
  }
  const key = readHostAuditKey(dir)
  if (key === undefined)
    throw new SovraError('ERR_INTERNAL', `the host audit key ${file} vanished after it was written`)
  return key
}

/**
 * The host's audit key if it exists (verification never creates one).
 * @param dir the folder (`<state>/keys`)
 */
export function readHostAuditKey(dir: string): SigningKey | undefined {
  let pem: Buffer
  try {
    pem = readFileSync(join(dir, 'audit.key'))
  } catch {
    return undefined
  }
  const privateKey = createPrivateKey(pem)
  const raw = Buffer.from((createPublicKey(privateKey).export({ format: 'jwk' }) as { x: string }).x, 'base64url')
  return { name: 'audit', keyid: keyIdOf(raw), publicKey: raw.toString('base64'), privateKey }
}

/**
 * Checkpoints over a bucket, signed by a key, checked against the keys accepted for them.
 * @param options the bucket, the signing key, the accepted keys (each asked for when first needed), how often
 */
export function auditCheckpoints(options: {
  bucket: () => Bucket
  key: () => SigningKey
  trusted: () => ReadonlyMap<string, CheckpointSigner>
  every?: number
}): AuditCheckpoints {
  const every = options.every ?? DEFAULT_CHECKPOINT_EVERY
  const immediate = new Set<string>(CHECKPOINT_ACTIONS)
  return {
    every,
    due: (action, id) => immediate.has(action.split('.')[0] ?? '') || id % every === 0,
    async write(head) {
      const key = options.key()
      const at = new Date().toISOString()
      const object = checkpointObject(head.entries)
      await options
        .bucket()
        .put(object, JSON.stringify(signCheckpoint(head, at, key)), { contentType: 'application/json' })
      return { ...head, at, keyid: key.keyid, signer: 'host audit key', object, publicKey: key.publicKey }
    },
    async read() {
      const bucket = options.bucket()
      const trusted = options.trusted()
      const checkpoints: Checkpoint[] = []
      const problems: string[] = []
      let cursor: string | undefined
      do {
        const page = await bucket.list({ prefix: CHECKPOINT_PREFIX, ...(cursor === undefined ? {} : { cursor }) })
        for (const o of page.objects) {
          const text = await (await bucket.get(o.key))?.text()
          if (text === undefined) continue
          const c = openCheckpoint(text, o.key, trusted)
          if (typeof c === 'string') problems.push(c)
          else checkpoints.push(c)
        }
        cursor = page.truncated ? page.cursor : undefined
      } while (cursor !== undefined)
      checkpoints.sort((a, b) => a.entries - b.entries || a.at.localeCompare(b.at))
      return { checkpoints, problems }
    },
  }
}

/**
 * The checkpoints of a project's state: signed by the host audit key under `<state>/keys`, stored in the artifacts
 * bucket, accepted when signed by that key or by a `[[trust]]` key with kind `audit`.
 * @param options the state folder, the artifacts bucket, the trust policy, the environment
 * (`SOVRA_AUDIT_CHECKPOINT_EVERY`, default 100)
 */
export function stateAuditCheckpoints(options: {
  stateDir: string
  bucket: () => Bucket
  trust: () => TrustPolicy
  env?: Record<string, string | undefined>
}): AuditCheckpoints {
  const raw = (options.env ?? process.env)['SOVRA_AUDIT_CHECKPOINT_EVERY']
  const every = raw === undefined || raw === '' ? DEFAULT_CHECKPOINT_EVERY : Number(raw)
  if (!Number.isInteger(every) || every < 1)
    throw new SovraError(
      'ERR_CONFIG',
      `SOVRA_AUDIT_CHECKPOINT_EVERY: expected a whole number of entries >= 1, received ${JSON.stringify(raw)}`,
    )
  const dir = join(options.stateDir, 'keys')
  let bucket: Bucket | undefined
  let key: SigningKey | undefined
  return auditCheckpoints({
    every,
    bucket: () => (bucket ??= options.bucket()),
    key: () => (key ??= hostAuditKey(dir)),
    trusted: () => {
      const trust = options.trust()
      const accepted = new Map<string, CheckpointSigner>(
        [...trust.forKind('audit')].map(([keyid, key]) => [keyid, { name: trust.nameOf(keyid), key }]),
      )
      const host = readHostAuditKey(dir)
      if (host !== undefined)
        accepted.set(host.keyid, { name: 'host audit key', key: createPublicKey(host.privateKey) })
      return accepted
    },
  })
}
