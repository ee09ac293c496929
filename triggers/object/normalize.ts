import { SovraError } from '../../runtime/core/errors.ts'
import type { ObjectEvent } from '../../runtime/core/handlers.ts'

interface S3Record {
  eventName?: unknown
  eventTime?: unknown
  eventSource?: unknown
  s3?: {
    bucket?: { name?: unknown }
    object?: {
      key?: unknown
      size?: unknown
      eTag?: unknown
      contentType?: unknown
      userMetadata?: unknown
      versionId?: unknown
      sequencer?: unknown
    }
  }
}

/** A record that is well-formed but not an object event functions take (`s3:ObjectAccessed:Get`, ...). */
export interface IgnoredRecord {
  index: number
  eventName: string
}

/** A record that can never be queued, whatever the number of retries: what was wrong with it. */
export interface RejectedRecord {
  index: number
  message: string
}

/** A batch of records sorted into the events to queue, the records to skip and the records refused. */
export interface NormalizedBatch {
  events: ObjectEvent[]
  ignored: IgnoredRecord[]
  rejected: RejectedRecord[]
}

/**
 * Decodes a key as MinIO and S3 send it in notifications: query-escaped, so "+" is a space and "%2B" is "+".
 * @param key the key from the record
 */
export function decodeEventKey(key: string): string {
  try {
    return decodeURIComponent(key.replace(/\+/g, ' '))
  } catch {
    throw new SovraError('ERR_BAD_REQUEST', `object key ${JSON.stringify(key)} is not valid query-escaped text`)
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

const show = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 120 ? `${text.slice(0, 117)}...` : text
}

/**
 * Normalises one record: the event, or what to report for a record of another event type; throws ERR_BAD_REQUEST
 * naming the field for a record that can never be queued.
 */
function normalizeRecord(raw: unknown, i: number, source: string): ObjectEvent | IgnoredRecord {
  const r = raw as S3Record | null
  const bad = (what: string, value: unknown, expected = 'a string'): never => {
    throw new SovraError('ERR_BAD_REQUEST', `Records[${i}].${what}: expected ${expected}, received ${show(value)}`)
  }
  const text = (what: string, value: unknown, expected?: string): string => {
    if (typeof value !== 'string') return bad(what, value, expected)
    // PostgreSQL text and jsonb cannot hold U+0000 (PGlite and the server refuse the whole insert), and S3 keys
    // never contain it: such a record is refused alone instead of failing its batch on every retry.
    if (value.includes('\u0000')) return bad(what, value, 'text without NUL (U+0000) characters')
    // A lone surrogate cannot be stored either (PostgreSQL: "Unicode low surrogate must follow a high surrogate").
    if (LONE_SURROGATE.test(value)) return bad(what, value, 'well-formed Unicode text (no lone surrogates)')
    return value
  }
  const optional = (what: string, value: unknown): string | undefined =>
    typeof value === 'string' ? text(what, value) : undefined
  const eventName = text('eventName', r?.eventName, 'a string like "s3:ObjectCreated:Put"')
  const name = eventName.replace(/^s3:/, '')
  const type = name.startsWith('ObjectCreated') ? 'created' : name.startsWith('ObjectRemoved') ? 'removed' : undefined
  // MinIO sends every type a bucket subscribes to (s3:ObjectAccessed:*, s3:ObjectRestore:*, replication, ...):
  // functions take created and removed only; the others are skipped, not a reason to refuse the batch.
  if (type === undefined) return { index: i, eventName }
  const bucket = text('s3.bucket.name', r?.s3?.bucket?.name)
  const rawKey = text('s3.object.key', r?.s3?.object?.key)
  let key: string
  try {
    key = decodeEventKey(rawKey)
  } catch {
    return bad('s3.object.key', rawKey, 'query-escaped text ("a+b%2Bc" for "a b+c")')
  }
  if (key.includes('\u0000')) bad('s3.object.key', rawKey, 'a key without NUL characters (%00)')
  const o = r?.s3?.object ?? {}
  const metadata: Record<string, string> = {}
  if (typeof o.userMetadata === 'object' && o.userMetadata !== null) {
    for (const [k, v] of Object.entries(o.userMetadata as Record<string, unknown>)) {
      // MinIO sends user metadata with its HTTP header prefix; functions see the plain names, as on put.
      if (typeof v !== 'string') continue
      const plain = text('s3.object.userMetadata (a name)', k)
        .replace(/^x-amz-meta-/i, '')
        .toLowerCase()
      metadata[plain] = text(`s3.object.userMetadata.${k}`, v)
    }
  }
  const versionId = optional('s3.object.versionId', o.versionId)
  return {
    type,
    bucket,
    key,
    size: typeof o.size === 'number' ? o.size : undefined,
    etag: optional('s3.object.eTag', o.eTag)?.replace(/"/g, ''),
    versionId: versionId === '' ? undefined : versionId,
    sequencer: optional('s3.object.sequencer', o.sequencer),
    contentType: optional('s3.object.contentType', o.contentType),
    metadata,
    eventName: eventName.startsWith('s3:') ? eventName : `s3:${eventName}`,
    time: optional('eventTime', r?.eventTime) ?? new Date().toISOString(),
    source,
  }
}

/**
 * Sorts S3-style event records (MinIO webhooks, S3 notifications, s3rver) into normalised ObjectEvents (created and
 * removed), the records of other event types (skipped), and the records that can never be queued (a missing field,
 * a NUL character), each with its index and what was wrong. Throws only when there is no records array at all.
 * @param records the `Records` array
 * @param source where they came from (`minio`, `s3`)
 * @example
 * const { events, ignored, rejected } = normalizeBatch(body.Records, 'minio')
 */
export function normalizeBatch(records: unknown, source: string): NormalizedBatch {
  if (!Array.isArray(records) || records.length === 0) {
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `expected a non-empty "Records" array of S3 event records, received ${JSON.stringify(records)?.slice(0, 80)}`,
    )
  }
  const batch: NormalizedBatch = { events: [], ignored: [], rejected: [] }
  records.forEach((raw, i) => {
    try {
      const r = normalizeRecord(raw, i, source)
      if ('type' in r) batch.events.push(r)
      else batch.ignored.push(r)
    } catch (error) {
      if (!(error instanceof SovraError)) throw error
      batch.rejected.push({ index: i, message: error.message })
    }
  })
  return batch
}

/**
 * Normalises S3-style event records to ObjectEvents, skipping records of other event types (see
 * {@link normalizeBatch}). Every malformed record is reported with its index, and then nothing is accepted.
 * @param records the `Records` array
 * @param source where they came from (`minio`, `s3`)
 */
export function normalizeRecords(records: unknown, source: string): ObjectEvent[] {
  const { events, rejected } = normalizeBatch(records, source)
  if (rejected.length > 0) throw new SovraError('ERR_BAD_REQUEST', rejected.map((r) => r.message).join('; '))
  return events
}
