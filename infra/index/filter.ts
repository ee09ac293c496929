import { SovraError } from '../../runtime/core/errors.ts'

/** A metadata equality (or `$in`) filter; it can only narrow what RLS already permits. */
export type IndexFilter = Record<string, string | number | boolean | { $in: readonly (string | number | boolean)[] }>

/** Turns a filter into a SQL condition, appending its values to `params` as `$n` placeholders. */
export type FilterSql = (filter: IndexFilter | undefined, params: unknown[]) => string

/** Fields a filter may always name: chunk columns rather than metadata keys. */
const COLUMN_FILTERS = ['bucket', 'key', 'etag']

/**
 * Creates the filter compiler of one index: only whitelisted fields, every value a bound parameter.
 * @param name the index name, for error messages
 * @param filterFields metadata keys a filter may name, besides `bucket`, `key` and `etag`
 * @example
 * const filterSql = filterCompiler('policies', ['lang'])
 * const params: unknown[] = []
 * filterSql({ lang: 'ja', bucket: { $in: ['hr'] } }, params) // "metadata->>'lang' = $1 AND bucket = ANY($2::text[])"
 */
export function filterCompiler(name: string, filterFields: readonly string[] | undefined): FilterSql {
  const fields = new Set([...COLUMN_FILTERS, ...(filterFields ?? [])])
  return (filter, params) => {
    const terms: string[] = []
    for (const [field, want] of Object.entries(filter ?? {})) {
      if (!fields.has(field)) {
        throw new SovraError(
          'ERR_BAD_REQUEST',
          `index ${name}: filter field ${JSON.stringify(field)} is not filterable; valid fields: ${[...fields].join(', ')}`,
        )
      }
      const column = COLUMN_FILTERS.includes(field) ? field : `metadata->>${sqlString(field)}`
      if (typeof want === 'object') {
        params.push(want.$in.map(String))
        terms.push(`${column} = ANY($${String(params.length)}::text[])`)
      } else {
        params.push(String(want))
        terms.push(`${column} = $${String(params.length)}`)
      }
    }
    return terms.length === 0 ? 'true' : terms.join(' AND ')
  }
}

/** A SQL string literal (for a metadata key, already checked against the whitelist). */
function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`
}
