import * as v from 'valibot'

import { formatDiagnostic, show, type Diagnostic } from '../../runtime/config/diagnostics.ts'
import { SovraError } from '../../runtime/core/errors.ts'
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
    diagnostics.push(
      aclDiagnostic(aclKey, 'tier', `unknown tier ${show(tier)}; valid tiers are: ${tiers.names.join(', ')}`),
    )
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
      aclDiagnostic(
        aclKey,
        '(root)',
        `not valid JSON (${reason}); expected an object like {"allow": ["hr"], "tier": "internal"}`,
      ),
    ])
  }
}

/**
 * An error diagnostic for an ACL file or object's metadata.
 * @param file the file (or object) that was invalid
 * @param path the key path within it
 * @param message what was wrong, the value received and what is valid
 */
export function aclDiagnostic(file: string, path: string, message: string): Diagnostic {
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
  return aclDiagnostic(file, path === '' ? '(root)' : path, message)
}
