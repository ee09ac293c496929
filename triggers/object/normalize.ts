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

/**
 * Normalises S3-style event records (MinIO webhooks, S3 notifications, s3rver) to ObjectEvents. Every problem is
 * reported with the record's index; nothing is half-accepted.
 * @param records the `Records` array
 * @param source where they came from (`minio`, `s3`)
 */
export function normalizeRecords(records: unknown, source: string): ObjectEvent[] {
  if (!Array.isArray(records) || records.length === 0) {
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `expected a non-empty "Records" array of S3 event records, received ${JSON.stringify(records)?.slice(0, 80)}`,
    )
  }
  return records.map((raw, i) => {
    const r = raw as S3Record
    const bad = (what: string, value: unknown): never => {
      throw new SovraError(
        'ERR_BAD_REQUEST',
        `Records[${i}].${what}: expected ${what === 'eventName' ? 'a string like "s3:ObjectCreated:Put"' : 'a string'}, received ${JSON.stringify(value)}`,
      )
    }
    const eventName = typeof r?.eventName === 'string' ? r.eventName : bad('eventName', r?.eventName)
    const bucket =
      typeof r?.s3?.bucket?.name === 'string' ? r.s3.bucket.name : bad('s3.bucket.name', r?.s3?.bucket?.name)
    const rawKey = typeof r?.s3?.object?.key === 'string' ? r.s3.object.key : bad('s3.object.key', r?.s3?.object?.key)
    const name = eventName.replace(/^s3:/, '')
    const type = name.startsWith('ObjectCreated') ? 'created' : name.startsWith('ObjectRemoved') ? 'removed' : undefined
    if (type === undefined) {
      throw new SovraError(
        'ERR_BAD_REQUEST',
        `Records[${i}].eventName: ${JSON.stringify(eventName)} is neither ObjectCreated:* nor ObjectRemoved:*`,
      )
    }
    const o = r.s3?.object ?? {}
    const metadata: Record<string, string> = {}
    if (typeof o.userMetadata === 'object' && o.userMetadata !== null) {
      for (const [k, v] of Object.entries(o.userMetadata as Record<string, unknown>)) {
        // MinIO sends user metadata with its HTTP header prefix; functions see the plain names, as on put.
        if (typeof v === 'string') metadata[k.replace(/^x-amz-meta-/i, '').toLowerCase()] = v
      }
    }
    return {
      type,
      bucket,
      key: decodeEventKey(rawKey),
      size: typeof o.size === 'number' ? o.size : undefined,
      etag: typeof o.eTag === 'string' ? o.eTag.replace(/"/g, '') : undefined,
      versionId: typeof o.versionId === 'string' && o.versionId !== '' ? o.versionId : undefined,
      sequencer: typeof o.sequencer === 'string' ? o.sequencer : undefined,
      contentType: typeof o.contentType === 'string' ? o.contentType : undefined,
      metadata,
      eventName: eventName.startsWith('s3:') ? eventName : `s3:${eventName}`,
      time: typeof r.eventTime === 'string' ? r.eventTime : new Date().toISOString(),
      source,
    }
  })
}
