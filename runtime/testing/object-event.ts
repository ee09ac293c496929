import { createHash } from 'node:crypto'
import { SovraError } from '../core/errors.ts'
import type { ObjectEvent } from '../core/index.ts'
import { normalizeRecords } from '../../triggers/object/normalize.ts'

/** What {@link objectEvent} and {@link minioRecord} build an event from. */
export interface ObjectEventInit {
  bucket: string
  key: string
  /** `put` (s3:ObjectCreated:Put) or `delete` (s3:ObjectRemoved:Delete). */
  action: 'put' | 'delete'
  /** The object's bytes: size and etag (MD5, as S3 computes it) are taken from them unless given. */
  body?: string | Uint8Array
  size?: number
  /** The etag without quotes (default: MD5 of `body`, or of nothing). */
  etag?: string
  contentType?: string
  /** User metadata, plain names (sent as MinIO sends it: `X-Amz-Meta-<name>`). */
  metadata?: Record<string, string>
  versionId?: string
  /** Orders events on one key (default: increasing across calls, so later events are newer). */
  sequencer?: string
  /** When it happened (default now). */
  time?: Date | string
  /** Where it came from, as functions see `event.source` (default `minio`). */
  source?: string
}

let counter = 0
/** An increasing hex sequencer, as MinIO sends them: later calls order after earlier ones. */
function nextSequencer(): string {
  counter = (counter + 1) % 0x10000
  return `${Date.now().toString(16).padStart(12, '0')}${counter.toString(16).padStart(4, '0')}`.toUpperCase()
}

/**
 * Builds the S3 event record MinIO's webhook sends for one object (the body of `POST /_sovra/events/minio` is
 * `{ Records: [record] }`), with the key query-escaped as MinIO escapes it.
 * @param init bucket, key, action, and the object's size, etag, content type, metadata
 * @example
 * await fetch(`${host.url}/_sovra/events/minio`, {
 *   method: 'POST',
 *   headers: { authorization: `Bearer ${token}` },
 *   body: JSON.stringify({ Records: [minioRecord({ bucket: 'docs', key: 'a.txt', action: 'put', body: 'hi' })] }),
 * })
 */
export function minioRecord(init: ObjectEventInit): Record<string, unknown> {
  if (init.action !== 'put' && init.action !== 'delete') {
    throw new SovraError(
      'ERR_USAGE',
      `objectEvent: action must be "put" or "delete", received ${JSON.stringify(init.action)}`,
    )
  }
  const put = init.action === 'put'
  const bytes = typeof init.body === 'string' ? new TextEncoder().encode(init.body) : (init.body ?? new Uint8Array())
  const time = init.time === undefined ? new Date() : new Date(init.time)
  return {
    eventVersion: '2.0',
    eventSource: 'minio:s3',
    eventName: put ? 's3:ObjectCreated:Put' : 's3:ObjectRemoved:Delete',
    eventTime: time.toISOString(),
    s3: {
      bucket: { name: init.bucket },
      object: {
        // MinIO query-escapes keys in notifications ("+" for a space); normalizeRecords decodes them.
        key: encodeURIComponent(init.key).replace(/%20/g, '+').replace(/%2F/g, '/'),
        ...(put
          ? {
              size: init.size ?? bytes.byteLength,
              eTag: init.etag ?? createHash('md5').update(bytes).digest('hex'),
              ...(init.contentType === undefined ? {} : { contentType: init.contentType }),
            }
          : {}),
        userMetadata: Object.fromEntries(
          Object.entries(init.metadata ?? {}).map(([name, value]) => [`X-Amz-Meta-${name}`, value]),
        ),
        ...(init.versionId === undefined ? {} : { versionId: init.versionId }),
        sequencer: init.sequencer ?? nextSequencer(),
      },
    },
  }
}

/**
 * Builds the ObjectEvent a function's `object` handler receives for a MinIO put or delete: the webhook record
 * normalised by the host's own normaliser, so the shape is exactly what a real notification gives.
 * @param init bucket, key, action, and the object's body or size and etag, content type, metadata
 * @example
 * const event = objectEvent({ bucket: 'docs', key: 'policies/a.md', action: 'put', body: '# A' })
 * await worker.object(event, env, createExecutionContext())
 */
export function objectEvent(init: ObjectEventInit): ObjectEvent {
  const [event] = normalizeRecords([minioRecord(init)], init.source ?? 'minio')
  // normalizeRecords returns one event per record; one record went in.
  return event as ObjectEvent
}
