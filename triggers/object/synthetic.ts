import type { ObjectEvent } from '../../runtime/core/handlers.ts'
import type { Bucket } from '../../runtime/core/ports.ts'

/**
 * An event for `sovra trigger object`: for "created", filled from the object's metadata when it exists.
 * @param bucket the bucket
 * @param key the key
 * @param type created or removed
 * @param buckets the adapters, to read the object's metadata
 */
export async function syntheticEvent(
  bucket: string,
  key: string,
  type: 'created' | 'removed',
  buckets?: (name: string) => Bucket,
): Promise<ObjectEvent> {
  const head = type === 'created' && buckets !== undefined ? await buckets(bucket).head(key) : null
  return {
    type,
    bucket,
    key,
    size: head?.size,
    etag: head?.etag,
    versionId: undefined,
    sequencer: `${Date.now().toString(16).padStart(12, '0')}ffff`,
    contentType: head?.httpMetadata.contentType,
    metadata: head?.customMetadata ?? {},
    eventName: type === 'created' ? 's3:ObjectCreated:Put' : 's3:ObjectRemoved:Delete',
    time: new Date().toISOString(),
    source: 'cli',
  }
}
