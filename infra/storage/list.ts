import { SovraError } from '../../runtime/core/errors.ts'
import type { BucketListOptions } from '../../runtime/core/ports.ts'

/** S3's page size limit. */
export const MAX_LIST_LIMIT = 1000

/**
 * One page of a listing over all keys, with S3's semantics: UTF-8 byte order, prefix, delimiter (common prefixes
 * count toward the limit), and an opaque cursor (the last key or prefix returned).
 * @param keys every key in the bucket, any order
 * @param options prefix, delimiter, limit, cursor
 */
export function listPage(
  keys: string[],
  options: BucketListOptions,
): { keys: string[]; prefixes: string[]; truncated: boolean; cursor: string | undefined } {
  const limit = options.limit ?? MAX_LIST_LIMIT
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `list: limit must be an integer from 1 to ${MAX_LIST_LIMIT}, received ${JSON.stringify(options.limit)}`,
    )
  }
  const prefix = options.prefix ?? ''
  const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor)
  const sorted = keys.filter((k) => k.startsWith(prefix)).sort(compareUtf8)
  const out: string[] = []
  const prefixes: string[] = []
  let last: string | undefined
  for (const key of sorted) {
    let entry = key
    let isPrefix = false
    if (options.delimiter !== undefined && options.delimiter !== '') {
      const at = key.indexOf(options.delimiter, prefix.length)
      if (at >= 0) {
        entry = key.slice(0, at + options.delimiter.length)
        isPrefix = true
      }
    }
    if (after !== undefined && compareUtf8(entry, after) <= 0) continue
    if (isPrefix && prefixes.at(-1) === entry) continue
    if (out.length + prefixes.length === limit)
      return { keys: out, prefixes, truncated: true, cursor: encodeCursor(last as string) }
    if (isPrefix) prefixes.push(entry)
    else out.push(entry)
    last = entry
  }
  return { keys: out, prefixes, truncated: false, cursor: undefined }
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

function encodeCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url')
}

function decodeCursor(cursor: string): string {
  return Buffer.from(cursor, 'base64url').toString('utf8')
}
