import { ACL_FILE } from './acl-schema.ts'

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
