import { SovraError } from '../../core/errors.ts'
import type { Bucket, BucketObject, BucketPutValue } from '../../core/ports.ts'
import type { Served } from '../define.ts'
import type { GetReply } from './client.ts'

const METHODS = ['get', 'head', 'put', 'list', 'delete'] as const

/**
 * The host side: runs one call from an isolate on a bucket adapter, returning a structured-clone-safe value.
 * @param bucket the adapter
 * @param method the method the function called
 * @param args its arguments
 */
export async function serveBucketCall(bucket: Bucket, method: string, args: unknown[]): Promise<Served> {
  if (!(METHODS as readonly string[]).includes(method)) {
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `unknown bucket method ${JSON.stringify(method)}; valid: ${METHODS.join(', ')}`,
    )
  }
  const [a, b, c] = args
  switch (method) {
    case 'get': {
      const obj = await bucket.get(a as string)
      if (obj === null) return { value: null, transfer: [] }
      const bytes = new Uint8Array(await obj.arrayBuffer())
      const plain: BucketObject = {
        key: obj.key,
        size: obj.size,
        etag: obj.etag,
        httpEtag: obj.httpEtag,
        uploaded: obj.uploaded,
        httpMetadata: { ...obj.httpMetadata },
        customMetadata: { ...obj.customMetadata },
        version: obj.version,
      }
      return { value: { meta: plain, bytes } satisfies GetReply, transfer: [bytes.buffer as ArrayBuffer] }
    }
    case 'head':
      return { value: await bucket.head(a as string), transfer: [] }
    case 'put':
      return {
        value: await bucket.put(a as string, b as BucketPutValue, (c ?? {}) as Parameters<Bucket['put']>[2]),
        transfer: [],
      }
    case 'list':
      return { value: await bucket.list((a ?? {}) as Parameters<Bucket['list']>[0]), transfer: [] }
    default:
      await bucket.delete(a as string | string[])
      return { value: undefined, transfer: [] }
  }
}
