/**
 * Checks a JSON value against the JSON Schema subset structured output uses (type, enum, const, properties,
 * required, additionalProperties, items, min/maxItems, min/maxLength, minimum/maximum, anyOf/oneOf, $ref to $defs).
 * Returns the first problem as `path: what`, or undefined when the value conforms. Grammars make llama output
 * conform by construction; this check is what proves it (and the only check for external providers).
 * @param value the parsed output
 * @param schema the schema the caller asked for
 */
export function checkJson(value: unknown, schema: Record<string, unknown>): string | undefined {
  return check(value, schema, '$', schema)
}

type Schema = Record<string, unknown>

function typeOf(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number'
  return typeof v
}

function check(value: unknown, schema: Schema, path: string, root: Schema): string | undefined {
  if (typeof schema['$ref'] === 'string') {
    const name = schema['$ref'].replace(/^#\/(\$defs|definitions)\//, '')
    const defs = (root['$defs'] ?? root['definitions'] ?? {}) as Record<string, Schema>
    const target = defs[name]
    if (target === undefined) return `${path}: unresolvable $ref ${schema['$ref']}`
    return check(value, target, path, root)
  }
  const actual = typeOf(value)
  const type = schema['type']
  if (type !== undefined) {
    const types = Array.isArray(type) ? (type as string[]) : [type as string]
    const ok = types.some((t) => t === actual || (t === 'number' && actual === 'integer'))
    if (!ok) return `${path}: expected ${types.join(' or ')}, received ${actual}`
  }
  if (Array.isArray(schema['enum']) && !schema['enum'].some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    return `${path}: expected one of ${JSON.stringify(schema['enum'])}, received ${JSON.stringify(value)}`
  }
  if ('const' in schema && JSON.stringify(schema['const']) !== JSON.stringify(value)) {
    return `${path}: expected ${JSON.stringify(schema['const'])}, received ${JSON.stringify(value)}`
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = schema[key]
    if (Array.isArray(options)) {
      const passing = (options as Schema[]).filter((s) => check(value, s, path, root) === undefined).length
      if (passing === 0 || (key === 'oneOf' && passing > 1))
        return `${path}: matches ${passing} of the ${key} alternatives`
    }
  }
  if (actual === 'object') {
    const obj = value as Record<string, unknown>
    const props = (schema['properties'] ?? {}) as Record<string, Schema>
    for (const r of (schema['required'] ?? []) as string[]) if (!(r in obj)) return `${path}.${r}: required, missing`
    for (const [k, v] of Object.entries(obj)) {
      const sub = props[k]
      if (sub !== undefined) {
        const problem = check(v, sub, `${path}.${k}`, root)
        if (problem !== undefined) return problem
      } else if (schema['additionalProperties'] === false) {
        return `${path}.${k}: not allowed (additionalProperties is false)`
      } else if (typeof schema['additionalProperties'] === 'object') {
        const problem = check(v, schema['additionalProperties'] as Schema, `${path}.${k}`, root)
        if (problem !== undefined) return problem
      }
    }
  }
  if (actual === 'array') {
    const arr = value as unknown[]
    if (typeof schema['minItems'] === 'number' && arr.length < schema['minItems'])
      return `${path}: expected at least ${schema['minItems']} items, received ${arr.length}`
    if (typeof schema['maxItems'] === 'number' && arr.length > schema['maxItems'])
      return `${path}: expected at most ${schema['maxItems']} items, received ${arr.length}`
    const items = schema['items']
    if (typeof items === 'object' && items !== null) {
      for (let i = 0; i < arr.length; i++) {
        const problem = check(arr[i], items as Schema, `${path}[${i}]`, root)
        if (problem !== undefined) return problem
      }
    }
  }
  if (actual === 'string') {
    const s = value as string
    if (typeof schema['minLength'] === 'number' && s.length < schema['minLength'])
      return `${path}: expected at least ${schema['minLength']} characters, received ${s.length}`
    if (typeof schema['maxLength'] === 'number' && s.length > schema['maxLength'])
      return `${path}: expected at most ${schema['maxLength']} characters, received ${s.length}`
  }
  if (actual === 'number' || actual === 'integer') {
    const n = value as number
    if (typeof schema['minimum'] === 'number' && n < schema['minimum'])
      return `${path}: expected >= ${schema['minimum']}, received ${n}`
    if (typeof schema['maximum'] === 'number' && n > schema['maximum'])
      return `${path}: expected <= ${schema['maximum']}, received ${n}`
  }
  return undefined
}
