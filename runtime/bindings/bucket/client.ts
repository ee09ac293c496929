import { SovraError } from '../../core/errors.ts'
import { objectBody } from '../../core/object-body.ts'
import type { Bucket, BucketObject, BucketObjectBody, BucketPutValue } from '../../core/ports.ts'
import type { CallHost } from '../define.ts'

/** What a `get` sends back across the thread boundary: the metadata and the whole body. */
export interface GetReply {
  meta: BucketObject
  bytes: Uint8Array
}

async function toBytes(value: BucketPutValue): Promise<Uint8Array | string | null> {
  if (value === null || value === undefined || typeof value === 'string' || value instanceof Uint8Array)
    return value ?? null
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  if (typeof (value as ReadableStream<Uint8Array>).getReader === 'function')
    return new Uint8Array(await new Response(value).arrayBuffer())
  throw new SovraError(
    'ERR_BAD_REQUEST',
    `put: expected a string, ArrayBuffer, Uint8Array, ReadableStream or null, received ${typeof value}`,
  )
}

/**
 * The isolate side of a bucket binding (`env.DOCS`): R2's API, each call sent to the host, which runs it on the
 * configured adapter (fs or S3). Bodies cross whole (streams are read first), bounded by the isolate's memory.
 * @param call sends one call to the host
 */
export function bucketClient(call: CallHost): Bucket {
  return {
    async get(key) {
      const reply = (await call('get', [key])) as GetReply | null
      if (reply === null) return null
      const { bytes } = reply
      return objectBody(
        reply.meta,
        new ReadableStream<Uint8Array>({
          start(c) {
            if (bytes.byteLength > 0) c.enqueue(bytes)
            c.close()
          },
        }),
      ) as BucketObjectBody
    },
    head: async (key) => (await call('head', [key])) as BucketObject | null,
    async put(key, value, options) {
      const body = await toBytes(value)
      return (await call('put', [key, body, options ?? {}])) as BucketObject
    },
    list: async (options) => (await call('list', [options ?? {}])) as Awaited<ReturnType<Bucket['list']>>,
    delete: async (keys) => void (await call('delete', [typeof keys === 'string' ? keys : [...keys]])),
  }
}
