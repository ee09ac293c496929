import type * as v from 'valibot'
import { SovraError } from '../core/errors.ts'

/** One finding about a config file. */
export interface Diagnostic {
  severity: 'error' | 'warning'
  file: string
  /** Dotted key path (`functions[0].limits.timeout_ms`), when the finding is about a key. */
  path?: string
  line?: number
  column?: number
  message: string
}

/** Thrown when a config has errors; carries every diagnostic (errors and warnings), collected before throwing. */
export class ConfigError extends SovraError {
  readonly diagnostics: Diagnostic[]

  /** @param diagnostics all findings; at least one is an error */
  constructor(diagnostics: Diagnostic[]) {
    const errors = diagnostics.filter((d) => d.severity === 'error')
    super(
      'ERR_CONFIG',
      `Invalid config (${errors.length} error${errors.length === 1 ? '' : 's'}):\n${errors.map(formatDiagnostic).join('\n')}`,
    )
    this.diagnostics = diagnostics
  }
}

/**
 * Formats a diagnostic as `file:line:col: error: path: message`, the shape editors and CI annotate.
 * @param d the diagnostic
 */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line === undefined ? d.file : `${d.file}:${d.line}:${d.column ?? 1}`
  return `${where}: ${d.severity}: ${d.path === undefined ? '' : `${d.path}: `}${d.message}`
}

/** Renders a received value for a message, short. */
export function show(value: unknown): string {
  const s = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value))
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}

/**
 * Converts valibot issues to diagnostics naming the key path, the value received and what is valid.
 * @param issues valibot issues from safeParse
 * @param file the config file
 * @param prefix a path prefix for nested documents
 */
export function issuesToDiagnostics(issues: readonly v.BaseIssue<unknown>[], file: string, prefix = ''): Diagnostic[] {
  return issues.map((issue) => {
    const path = joinPath(prefix, pathOf(issue))
    const expected = issue.expected ?? 'a valid value'
    // Union issues carry the real reason in their sub-issues; the closest one reads best.
    const inner = issue.issues?.[0]
    const detail = inner !== undefined && issue.type === 'union' ? ` (${inner.message})` : ''
    // A check's message is a whole sentence (it names the value and the rule), as a binding kind writes it.
    const message =
      issue.kind === 'validation' && issue.type === 'check'
        ? issue.message
        : issue.kind === 'validation' && issue.type === 'regex'
          ? `expected ${issue.message}, received ${show(issue.input)}`
          : `expected ${expected}, received ${show(issue.input)}${detail}`
    return { severity: 'error' as const, file, path: path === '' ? '(root)' : path, message }
  })
}

function pathOf(issue: v.BaseIssue<unknown>): string {
  let out = ''
  for (const item of issue.path ?? []) {
    out += typeof item.key === 'number' ? `[${item.key}]` : out === '' ? String(item.key) : `.${String(item.key)}`
  }
  return out
}

function joinPath(a: string, b: string): string {
  if (a === '') return b
  if (b === '') return a
  return b.startsWith('[') ? `${a}${b}` : `${a}.${b}`
}

type AnySchema = v.GenericSchema & {
  entries?: Record<string, AnySchema>
  wrapped?: AnySchema
  item?: AnySchema
  value?: AnySchema
  options?: AnySchema[]
}

/**
 * Finds keys the schema does not know (strict `object` schemas only; `looseObject` tables are owned elsewhere)
 * and warns about each, with a "did you mean" when a known key is close.
 * @param schema the schema the value was validated against
 * @param value the raw value
 * @param file the config file
 * @param path the key path so far
 */
export function unknownKeyWarnings(schema: v.GenericSchema, value: unknown, file: string, path = ''): Diagnostic[] {
  const s = schema as AnySchema
  const out: Diagnostic[] = []
  if (s.type === 'optional' || s.type === 'nullable')
    return s.wrapped ? unknownKeyWarnings(s.wrapped, value, file, path) : out
  if (s.type === 'array' && Array.isArray(value) && s.item) {
    value.forEach((item, i) => out.push(...unknownKeyWarnings(s.item as AnySchema, item, file, `${path}[${i}]`)))
    return out
  }
  if (s.type === 'record' && isTable(value) && s.value) {
    for (const [k, item] of Object.entries(value))
      out.push(...unknownKeyWarnings(s.value, item, file, joinPath(path, k)))
    return out
  }
  if (s.type === 'union' && s.options) {
    const objectOption = s.options.find((o) => o.type === 'object')
    return objectOption && isTable(value) ? unknownKeyWarnings(objectOption, value, file, path) : out
  }
  if (s.type === 'object' && s.entries && isTable(value)) {
    const known = Object.keys(s.entries)
    for (const [k, item] of Object.entries(value)) {
      const sub = s.entries[k]
      const at = joinPath(path, k)
      if (sub === undefined) {
        const near = closest(k, known)
        out.push({
          severity: 'warning',
          file,
          path: at,
          message: `unknown key ${JSON.stringify(k)} is ignored${near === undefined ? '' : `; did you mean ${JSON.stringify(near)}?`}`,
        })
      } else {
        out.push(...unknownKeyWarnings(sub, item, file, at))
      }
    }
  }
  return out
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1
  for (const c of candidates) {
    const d = levenshtein(word, c)
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  return best
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length] ?? 0
}
