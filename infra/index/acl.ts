import { show } from '../../runtime/config/diagnostics.ts'
import type { Principal } from '../../runtime/core/context.ts'
import { SovraError } from '../../runtime/core/errors.ts'
import type { Bucket } from '../../runtime/core/ports.ts'
import type { TierOrder } from '../../runtime/core/tiers.ts'
import { metadataAcl } from './acl-metadata.ts'
import {
  ACL_FIELDS,
  AclError,
  MAX_ACL_FILE_BYTES,
  aclDiagnostic,
  parseAclFile,
  parseAclJson,
  type AclFile,
  type EffectiveAcl,
} from './acl-schema.ts'
import { aclKeysFor, isAclKey } from './acl-scope.ts'

// The ACL's schema and scope live in their own modules; importers keep using this one.
export {
  ACL_FIELDS,
  ACL_FILE,
  ACL_METADATA_PREFIX,
  AclError,
  AclSchema,
  MAX_ACL_FILE_BYTES,
  parseAclFile,
  parseAclJson,
  type AclField,
  type AclFile,
  type AclSource,
  type EffectiveAcl,
} from './acl-schema.ts'
export { aclKeysFor, aclPrefixesAffected, inAclScope, isAclKey, type AclScope } from './acl-scope.ts'

/** Options for {@link resolveAcl}. */
export interface ResolveAclOptions {
  /** Reads an `_acl.json` by its key: its parsed JSON, or undefined when there is no such object. */
  readAclFile: (aclKey: string) => Promise<unknown>
  /** The document's user metadata (`sovra-acl-allow`, ...; keys match case-insensitively, as S3 lowercases them). */
  metadata?: Readonly<Record<string, string>> | undefined
  /** The project's tier order. */
  tiers: TierOrder
  /** The tier of a document whose ACL names none (the index's tier); default: the highest tier. */
  defaultTier?: string | undefined
}

/**
 * Resolves a document's effective ACL: the nearest `_acl.json` up its key path (the whole file; a field it omits
 * takes the default, not an outer file's value), overridden field by field by `sovra-acl-*` metadata. With no file
 * and no metadata the ACL is deny-all (no allow, no owners): a sovereign store never shows a document nobody
 * granted. A field absent everywhere defaults to `[]`; the tier to `defaultTier`, else the highest tier.
 * @param key the document's key
 * @param options how to read ACL files, the document's metadata and the tiers
 * @example
 * const acl = await resolveAcl('docs/hr/leave/a.md', { readAclFile, metadata: obj.customMetadata, tiers })
 * acl.source.file // 'docs/hr/_acl.json' when docs/hr/leave/ has none
 */
export async function resolveAcl(key: string, options: ResolveAclOptions): Promise<EffectiveAcl> {
  if (isAclKey(key)) {
    throw new SovraError('ERR_USAGE', `${show(key)} is an ACL file, not a document; ACL files have no ACL of their own`)
  }
  const { tiers } = options
  // Metadata is checked first: a bad object fails the same way whatever its folders hold.
  const meta = metadataAcl(key, options.metadata ?? {}, tiers)
  let file: AclFile = {}
  let fileKey: string | undefined
  for (const aclKey of aclKeysFor(key)) {
    const raw = await options.readAclFile(aclKey)
    if (raw === undefined) continue
    file = parseAclFile(aclKey, raw, tiers)
    fileKey = aclKey
    break
  }
  const tierName = meta.acl.tier ?? file.tier ?? options.defaultTier ?? tiers.names[tiers.names.length - 1] ?? ''
  return {
    allow: meta.acl.allow ?? file.allow ?? [],
    deny: meta.acl.deny ?? file.deny ?? [],
    owners: meta.acl.owners ?? file.owners ?? [],
    tier: { name: tierName, rank: tiers.rank(tierName) },
    source: { file: fileKey, metadata: ACL_FIELDS.filter((f) => meta.acl[f] !== undefined) },
  }
}

/**
 * Reads `_acl.json` objects from a bucket for {@link resolveAcl}, remembering each read for the reader's lifetime
 * only. Make one per call or per event, never one per process: no cached ACL may outlive a revocation (issue 12).
 * @param bucket the documents bucket
 */
export function bucketAclReader(bucket: Bucket): (aclKey: string) => Promise<unknown> {
  const seen = new Map<string, Promise<unknown>>()
  return (aclKey) => {
    let read = seen.get(aclKey)
    if (read === undefined) {
      read = readAclObject(bucket, aclKey)
      seen.set(aclKey, read)
    }
    return read
  }
}

/**
 * Resolves a stored document's effective ACL from its bucket: its metadata (a `head`, unless given) and the
 * `_acl.json` objects up its key path, read fresh on every call.
 * @param bucket the documents bucket
 * @param key the document's key
 * @param tiers the project's tier order
 * @param options the document's metadata when the caller has it (an event, a list), and the default tier
 * @example
 * const acl = await aclFromBucket(env.DOCUMENTS, 'docs/hr/leave/a.md', tiers)
 */
export async function aclFromBucket(
  bucket: Bucket,
  key: string,
  tiers: TierOrder,
  options: { metadata?: Readonly<Record<string, string>> | undefined; defaultTier?: string | undefined } = {},
): Promise<EffectiveAcl> {
  let metadata = options.metadata
  if (metadata === undefined) {
    const head = await bucket.head(key)
    if (head === null) throw new SovraError('ERR_NOT_FOUND', `No object ${show(key)} to resolve an ACL for`)
    metadata = head.customMetadata
  }
  return resolveAcl(key, { readAclFile: bucketAclReader(bucket), metadata, tiers, defaultTier: options.defaultTier })
}

/** Why {@link readDecision} allowed or refused a read. */
export type ReadReason = 'denied-group' | 'below-tier' | 'allowed-group' | 'owner' | 'not-granted'

/**
 * Decides whether a principal may read a document, and why. Deny wins over everything (owners included); then the
 * principal's clearance must rank at least the document's tier (an unknown clearance or tier refuses); then a group
 * in `allow`, or the subject in `owners` (never the anonymous principal), grants. Nothing else does: no admin bypass.
 * @param principal the verified caller
 * @param acl the document's effective ACL
 * @param tiers the project's tier order
 */
export function readDecision(
  principal: Pick<Principal, 'subject' | 'groups' | 'clearance' | 'anonymous'>,
  acl: Pick<EffectiveAcl, 'allow' | 'deny' | 'owners' | 'tier'>,
  tiers: TierOrder,
): { allowed: boolean; reason: ReadReason } {
  if (principal.groups.some((g) => acl.deny.includes(g))) return { allowed: false, reason: 'denied-group' }
  const clearance = tiers.names.indexOf(principal.clearance)
  const tier = tiers.names.indexOf(acl.tier.name)
  if (clearance < 0 || tier < 0 || clearance < tier) return { allowed: false, reason: 'below-tier' }
  if (principal.groups.some((g) => acl.allow.includes(g))) return { allowed: true, reason: 'allowed-group' }
  if (principal.anonymous !== true && acl.owners.includes(principal.subject)) return { allowed: true, reason: 'owner' }
  return { allowed: false, reason: 'not-granted' }
}

/**
 * True when a principal may read a document under its effective ACL: the oracle the SQL row-level security must
 * agree with (see {@link readDecision} for the rules). Pure: no I/O, no clock.
 * @param principal the verified caller
 * @param acl the document's effective ACL
 * @param tiers the project's tier order
 * @example
 * mayRead({ subject: 'u1', groups: ['hr'], clearance: 'confidential' }, acl, tiers)
 */
export function mayRead(
  principal: Pick<Principal, 'subject' | 'groups' | 'clearance' | 'anonymous'>,
  acl: Pick<EffectiveAcl, 'allow' | 'deny' | 'owners' | 'tier'>,
  tiers: TierOrder,
): boolean {
  return readDecision(principal, acl, tiers).allowed
}

async function readAclObject(bucket: Bucket, aclKey: string): Promise<unknown> {
  const object = await bucket.get(aclKey)
  if (object === null) return undefined
  if (object.size > MAX_ACL_FILE_BYTES) {
    await object.body.cancel()
    throw new AclError(`ACL file ${show(aclKey)}`, [
      aclDiagnostic(
        aclKey,
        '(root)',
        `the file is ${object.size} bytes; an ACL file may be at most ${MAX_ACL_FILE_BYTES}`,
      ),
    ])
  }
  return parseAclJson(aclKey, await object.text())
}
