import * as v from 'valibot'

import { formatDiagnostic, show, type Diagnostic } from '../../runtime/config/diagnostics.ts'
import type { Principal } from '../../runtime/core/context.ts'
import { SovraError } from '../../runtime/core/errors.ts'
import type { Bucket } from '../../runtime/core/ports.ts'
import type { TierOrder } from '../../runtime/core/tiers.ts'

/** The name of a folder's ACL file; it applies to every document below its folder that has no nearer one. */
export const ACL_FILE = '_acl.json'

/** The prefix of the object user metadata keys that override an ACL file field by field (`sovra-acl-deny`). */
export const ACL_METADATA_PREFIX = 'sovra-acl-'

/** The fields of a document ACL, in the order messages list them. */
export const ACL_FIELDS = ['allow', 'deny', 'tier', 'owners'] as const

/** One field of a document ACL. */
export type AclField = (typeof ACL_FIELDS)[number]

/** An `_acl.json` larger than this is refused rather than read: ACL files are short lists, not documents. */
export const MAX_ACL_FILE_BYTES = 64 * 1024

// A name must survive the comma-separated metadata form unchanged, so a file and metadata can say the same thing.
const NameSchema = v.pipe(
  v.string(),
  v.regex(/^[^,\s](?:[^,]*[^,\s])?$/, 'a non-empty name without commas or surrounding spaces'),
)

/**
 * The schema of an `_acl.json` file. Unknown keys are errors, not warnings: a misspelt `deny` that was ignored
 * would silently widen access.
 */
export const AclSchema = v.pipe(
  // valibot's object schemas accept arrays (typeof [] is 'object'); `[]` must not pass as an empty, valid ACL.
  v.custom<Record<string, unknown>>(
    (input) => typeof input === 'object' && input !== null && !Array.isArray(input),
    'an object like {"allow": ["hr"], "tier": "confidential"}',
  ),
  v.strictObject({
    /** Groups whose members may read (subject to `deny` and `tier`). */
    allow: v.optional(v.array(NameSchema)),
    /** Groups whose members may never read, whatever else says they may. */
    deny: v.optional(v.array(NameSchema)),
    /** The document tier: a reader's clearance must be at least this (checked against the project's tiers). */
    tier: v.optional(v.string()),
    /** Principal subjects who may read regardless of `allow` (still subject to `deny` and `tier`). */
    owners: v.optional(v.array(NameSchema)),
  }),
)

/** The content of an `_acl.json` file. */
export type AclFile = v.InferOutput<typeof AclSchema>

/** Where an effective ACL came from: the `_acl.json` used (if any) and the fields object metadata overrode. */
export interface AclSource {
  /** The key of the nearest `_acl.json`, or undefined when there is none up the key path. */
  readonly file: string | undefined
  /** The fields set by `sovra-acl-*` metadata, in {@link ACL_FIELDS} order. */
  readonly metadata: readonly AclField[]
}

/** A document's effective ACL, inherited by every chunk of it. */
export interface EffectiveAcl {
  readonly allow: readonly string[]
  readonly deny: readonly string[]
  readonly owners: readonly string[]
  /** The document tier, by name and by rank in the project's tier order (0 is the lowest). */
  readonly tier: { readonly name: string; readonly rank: number }
  readonly source: AclSource
}

/** Thrown for an invalid `_acl.json` or invalid `sovra-acl-*` metadata: ERR_CONFIG with every problem found. */
export class AclError extends SovraError {
  /** Every problem, each naming the file (or object), the key path, the value received and what is valid. */
  readonly diagnostics: readonly Diagnostic[]

  /**
   * @param what what was invalid, for the first line (`ACL file "docs/_acl.json"`)
   * @param diagnostics at least one error
   */
  constructor(what: string, diagnostics: readonly Diagnostic[]) {
    const n = diagnostics.length
    super(
      'ERR_CONFIG',
      `Invalid ${what} (${n} error${n === 1 ? '' : 's'}):\n${diagnostics.map(formatDiagnostic).join('\n')}`,
    )
    this.diagnostics = diagnostics
  }
}

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
 * True when a key names an ACL file (which is never indexed as a document).
 * @param key an object key
 */
export function isAclKey(key: string): boolean {
  return key === ACL_FILE || key.endsWith(`/${ACL_FILE}`)
}

/**
 * The keys of the `_acl.json` files that may govern a document, nearest first.
 * @param key the document's key
 * @example
 * aclKeysFor('docs/hr/a.md') // ['docs/hr/_acl.json', 'docs/_acl.json', '_acl.json']
 */
export function aclKeysFor(key: string): string[] {
  const folders = key.split('/').slice(0, -1)
  const out: string[] = []
  for (let i = folders.length; i > 0; i--) out.push(`${folders.slice(0, i).join('/')}/${ACL_FILE}`)
  out.push(ACL_FILE)
  return out
}

/**
 * Validates the parsed content of an `_acl.json` against {@link AclSchema} and the project's tiers, reporting every
 * problem at once.
 * @param aclKey the file's key, for messages
 * @param value its parsed JSON
 * @param tiers the project's tier order
 */
export function parseAclFile(aclKey: string, value: unknown, tiers: TierOrder): AclFile {
  const result = v.safeParse(AclSchema, value)
  const diagnostics = result.success ? [] : result.issues.map((issue) => issueToDiagnostic(aclKey, issue))
  // The tier is checked even when other keys are bad, so one run reports every problem.
  const tier = typeof value === 'object' && value !== null ? (value as { tier?: unknown }).tier : undefined
  if (typeof tier === 'string' && !tiers.names.includes(tier)) {
    diagnostics.push(error(aclKey, 'tier', `unknown tier ${show(tier)}; valid tiers are: ${tiers.names.join(', ')}`))
  }
  if (!result.success || diagnostics.length > 0) throw new AclError(`ACL file ${show(aclKey)}`, diagnostics)
  return result.output
}

/**
 * Parses the text of an `_acl.json`, with an ERR_CONFIG error naming the file when it is not JSON.
 * @param aclKey the file's key, for messages
 * @param text the file's content
 */
export function parseAclJson(aclKey: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause)
    throw new AclError(`ACL file ${show(aclKey)}`, [
      error(
        aclKey,
        '(root)',
        `not valid JSON (${reason}); expected an object like {"allow": ["hr"], "tier": "internal"}`,
      ),
    ])
  }
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

/** The documents an `_acl.json` change may affect: keys under `prefix` but under none of `except`. */
export interface AclScope {
  /** The changed file's folder with its trailing `/` (`''` for the bucket root file). */
  readonly prefix: string
  /** Sub-folders (trailing `/`) with their own `_acl.json`, which shadows the changed one. */
  readonly except: readonly string[]
}

/**
 * Which documents an `_acl.json` change (created, updated or removed) affects, so their ACL rows can be updated
 * without re-embedding. Pass the other ACL file keys under the folder (a `list` of it) to exclude shadowed folders.
 * @param changedAclKey the changed object's key
 * @param otherAclKeys other `_acl.json` keys known in the bucket (any; those outside the folder are ignored)
 * @returns the scope, or undefined when the key is not an ACL file
 * @example
 * aclPrefixesAffected('docs/hr/_acl.json', ['docs/hr/leave/_acl.json']) // { prefix: 'docs/hr/', except: ['docs/hr/leave/'] }
 */
export function aclPrefixesAffected(changedAclKey: string, otherAclKeys: Iterable<string> = []): AclScope | undefined {
  if (!isAclKey(changedAclKey)) return undefined
  const prefix = changedAclKey.slice(0, -ACL_FILE.length)
  const nested = [...new Set(otherAclKeys)]
    .filter((k) => isAclKey(k) && k !== changedAclKey && k.startsWith(prefix))
    .map((k) => k.slice(0, -ACL_FILE.length))
    .sort()
  // After sorting, a folder comes before its sub-folders; a shadowed sub-folder is already excluded by its parent.
  const except: string[] = []
  for (const p of nested) if (!except.some((e) => p.startsWith(e))) except.push(p)
  return { prefix, except }
}

/**
 * True when a document key lies in an {@link AclScope}.
 * @param scope from {@link aclPrefixesAffected}
 * @param key a document key
 */
export function inAclScope(scope: AclScope, key: string): boolean {
  return !isAclKey(key) && key.startsWith(scope.prefix) && !scope.except.some((e) => key.startsWith(e))
}

async function readAclObject(bucket: Bucket, aclKey: string): Promise<unknown> {
  const object = await bucket.get(aclKey)
  if (object === null) return undefined
  if (object.size > MAX_ACL_FILE_BYTES) {
    await object.body.cancel()
    throw new AclError(`ACL file ${show(aclKey)}`, [
      error(aclKey, '(root)', `the file is ${object.size} bytes; an ACL file may be at most ${MAX_ACL_FILE_BYTES}`),
    ])
  }
  return parseAclJson(aclKey, await object.text())
}

/** Reads the `sovra-acl-*` keys of an object's metadata, reporting every bad key or value at once. */
function metadataAcl(
  key: string,
  metadata: Readonly<Record<string, string>>,
  tiers: TierOrder,
): { acl: { allow?: string[]; deny?: string[]; owners?: string[]; tier?: string } } {
  const file = `${key} (metadata)`
  const lists: Partial<Record<Exclude<AclField, 'tier'>, string[]>> = {}
  let tier: string | undefined
  const seen = new Map<string, string>()
  const diagnostics: Diagnostic[] = []
  for (const [name, value] of Object.entries(metadata)) {
    const lower = name.toLowerCase()
    if (!lower.startsWith(ACL_METADATA_PREFIX)) continue
    const field = lower.slice(ACL_METADATA_PREFIX.length)
    const valid = ACL_FIELDS.map((f) => ACL_METADATA_PREFIX + f).join(', ')
    // An ignored `sovra-acl-denny` would silently widen access, so an unknown ACL key is an error.
    if (!isAclField(field)) {
      diagnostics.push(error(file, name, `unknown ACL metadata key ${show(name)}; valid keys are: ${valid}`))
      continue
    }
    const before = seen.get(field)
    if (before !== undefined) {
      diagnostics.push(error(file, name, `${show(name)} repeats ${show(before)}; give each ACL field once`))
      continue
    }
    seen.set(field, name)
    if (field === 'tier') {
      tier = value.trim()
      if (!tiers.names.includes(tier))
        diagnostics.push(error(file, name, `unknown tier ${show(value)}; valid tiers are: ${tiers.names.join(', ')}`))
    } else {
      // Comma-separated; an empty value is an explicit empty list (e.g. `sovra-acl-allow: ""` grants nobody).
      lists[field] = value
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
    }
  }
  if (diagnostics.length > 0) throw new AclError(`ACL metadata of ${show(key)}`, diagnostics)
  return { acl: tier === undefined ? lists : { ...lists, tier } }
}

function isAclField(name: string): name is AclField {
  return (ACL_FIELDS as readonly string[]).includes(name)
}

function error(file: string, path: string, message: string): Diagnostic {
  return { severity: 'error', file, path, message }
}

function issueToDiagnostic(file: string, issue: v.BaseIssue<unknown>): Diagnostic {
  let path = ''
  for (const item of issue.path ?? []) {
    path += typeof item.key === 'number' ? `[${item.key}]` : path === '' ? String(item.key) : `.${String(item.key)}`
  }
  const valid = `valid keys are: ${ACL_FIELDS.join(', ')}`
  const message =
    issue.type === 'strict_object' && issue.expected === 'never'
      ? `unknown key ${show(issue.path?.at(-1)?.key)}; ${valid}`
      : issue.type === 'custom' || issue.type === 'regex'
        ? `expected ${issue.message}, received ${show(issue.input)}`
        : `expected ${issue.expected ?? 'a valid value'}, received ${show(issue.input)}`
  return error(file, path === '' ? '(root)' : path, message)
}
