import { show, type Diagnostic } from '../../runtime/config/diagnostics.ts'
import type { TierOrder } from '../../runtime/core/tiers.ts'
import { ACL_FIELDS, ACL_METADATA_PREFIX, AclError, aclDiagnostic, type AclField } from './acl-schema.ts'

/**
 * Reads the `sovra-acl-*` keys of an object's metadata, reporting every bad key or value at once.
 * @param key the object's key, for messages
 * @param metadata the object's user metadata (keys match case-insensitively)
 * @param tiers the project's tier order
 */
export function metadataAcl(
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
      diagnostics.push(aclDiagnostic(file, name, `unknown ACL metadata key ${show(name)}; valid keys are: ${valid}`))
      continue
    }
    const before = seen.get(field)
    if (before !== undefined) {
      diagnostics.push(aclDiagnostic(file, name, `${show(name)} repeats ${show(before)}; give each ACL field once`))
      continue
    }
    seen.set(field, name)
    if (field === 'tier') {
      tier = value.trim()
      if (!tiers.names.includes(tier))
        diagnostics.push(
          aclDiagnostic(file, name, `unknown tier ${show(value)}; valid tiers are: ${tiers.names.join(', ')}`),
        )
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
