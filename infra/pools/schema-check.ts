/**
 * Checks a caller's `response_format.json_schema.schema` before any work is queued: the keywords structured output
 * enforces (those of json-check.ts) must be well formed and satisfiable. A bad schema is the caller's error (400
 * naming the keyword's path), not the model's (a grammar built from `{"type": "banana"}` lets anything through and
 * the output check then failed with 502 ERR_MODEL_OUTPUT). Keywords it does not know are left alone (annotations
 * such as `title`, `description`, `$schema`; external providers may support more).
 */

/** The JSON Schema type names (JSON Schema 2020-12, Validation section 6.1.1). */
export const SCHEMA_TYPES = ['string', 'number', 'integer', 'boolean', 'object', 'array', 'null'] as const

type Schema = Record<string, unknown>

const isObject = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v)
const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v))

function key(path: string, name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? `${path}.${name}` : `${path}[${JSON.stringify(name)}]`
}

function jsonType(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number'
  return typeof v
}

/**
 * Lists what is wrong with a JSON schema, each problem as `path: what was expected, received what`; empty when it
 * is usable.
 * @param schema the schema the caller sent
 * @param path where it sits in the request body (`response_format.json_schema.schema`)
 */
export function schemaProblems(schema: unknown, path: string): string[] {
  const problems: string[] = []
  const root = isObject(schema) ? schema : {}
  const defs = new Set<string>()
  for (const group of ['$defs', 'definitions'] as const) {
    if (isObject(root[group])) for (const name of Object.keys(root[group])) defs.add(`#/${group}/${name}`)
  }
  walk(schema, path, problems, defs)
  return problems
}

function walk(schema: unknown, path: string, problems: string[], defs: ReadonlySet<string>): void {
  if (!isObject(schema)) {
    problems.push(`${path}: expected a schema object, received ${show(schema)}`)
    return
  }
  const sub = (value: unknown, at: string): void => walk(value, at, problems, defs)
  const schemaMap = (name: string): void => {
    const value = schema[name]
    if (value === undefined) return
    if (!isObject(value)) problems.push(`${key(path, name)}: expected an object of schemas, received ${show(value)}`)
    else for (const [k, s] of Object.entries(value)) sub(s, key(key(path, name), k))
  }
  const types = checkType(schema['type'], key(path, 'type'), problems)
  if ('enum' in schema) {
    const values = schema['enum']
    if (!Array.isArray(values) || values.length === 0)
      problems.push(`${key(path, 'enum')}: expected a non-empty array of values, received ${show(values)}`)
    else if (types !== undefined && !values.some((v) => fits(v, types)))
      problems.push(
        `${key(path, 'enum')}: no value is of type ${types.join(' or ')}, so nothing can match; received ${show(values)}`,
      )
  }
  if ('const' in schema && types !== undefined && !fits(schema['const'], types))
    problems.push(
      `${key(path, 'const')}: expected a value of type ${types.join(' or ')}, received ${show(schema['const'])}`,
    )
  schemaMap('properties')
  schemaMap('$defs')
  schemaMap('definitions')
  const required = schema['required']
  if (required !== undefined) {
    if (!Array.isArray(required) || required.some((r) => typeof r !== 'string'))
      problems.push(`${key(path, 'required')}: expected an array of property names, received ${show(required)}`)
    else if (schema['additionalProperties'] === false && schema['patternProperties'] === undefined) {
      const props = isObject(schema['properties']) ? schema['properties'] : {}
      for (const r of required as string[])
        if (!(r in props))
          problems.push(
            `${key(path, 'required')}: ${JSON.stringify(r)} is required but not in properties, and additionalProperties is false`,
          )
    }
  }
  const extra = schema['additionalProperties']
  if (extra !== undefined && typeof extra !== 'boolean') sub(extra, key(path, 'additionalProperties'))
  if (schema['items'] !== undefined) sub(schema['items'], key(path, 'items'))
  for (const name of ['anyOf', 'oneOf'] as const) {
    const options = schema[name]
    if (options === undefined) continue
    if (!Array.isArray(options) || options.length === 0)
      problems.push(`${key(path, name)}: expected a non-empty array of schemas, received ${show(options)}`)
    else options.forEach((s, i) => sub(s, `${key(path, name)}[${i}]`))
  }
  bounds(schema, path, problems, 'minItems', 'maxItems', true)
  bounds(schema, path, problems, 'minLength', 'maxLength', true)
  bounds(schema, path, problems, 'minimum', 'maximum', false)
  const ref = schema['$ref']
  if (ref !== undefined && (typeof ref !== 'string' || !defs.has(ref)))
    problems.push(
      `${key(path, '$ref')}: expected a reference to a schema under $defs or definitions of the root schema (${
        defs.size === 0 ? 'it defines none' : [...defs].map((d) => JSON.stringify(d)).join(', ')
      }), received ${show(ref)}`,
    )
}

function checkType(type: unknown, at: string, problems: string[]): string[] | undefined {
  if (type === undefined) return undefined
  const list = Array.isArray(type) ? type : [type]
  const valid = SCHEMA_TYPES as readonly unknown[]
  if (list.length === 0 || list.some((t) => !valid.includes(t)) || new Set(list).size !== list.length) {
    problems.push(
      `${at}: expected one of ${SCHEMA_TYPES.map((t) => JSON.stringify(t)).join(', ')}, or a non-empty array of ` +
        `them without repeats; received ${show(type)}`,
    )
    return undefined
  }
  return list as string[]
}

function fits(value: unknown, types: readonly string[]): boolean {
  const t = jsonType(value)
  return types.includes(t) || (t === 'integer' && types.includes('number'))
}

function bounds(schema: Schema, path: string, problems: string[], lo: string, hi: string, count: boolean): void {
  const ok = (v: unknown): v is number =>
    typeof v === 'number' && Number.isFinite(v) && (!count || (Number.isInteger(v) && v >= 0))
  const what = count ? 'a non-negative integer' : 'a number'
  for (const name of [lo, hi])
    if (schema[name] !== undefined && !ok(schema[name]))
      problems.push(`${key(path, name)}: expected ${what}, received ${show(schema[name])}`)
  const min = schema[lo]
  const max = schema[hi]
  if (ok(min) && ok(max) && min > max)
    problems.push(`${key(path, lo)}: ${min} is more than ${hi} ${max}, so nothing can match`)
}
