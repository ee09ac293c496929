import { SovraError } from '../core/errors.ts'
import { objectBody } from '../core/object-body.ts'
import type { Bucket, BucketObject, BucketObjectBody, BucketPutValue } from '../core/ports.ts'

/** Calls a binding method on the host; what the isolate side of a binding is built on. */
export type CallHost = (method: string, args: unknown[], transfer?: ArrayBuffer[]) => Promise<unknown>

const METHODS = ['get', 'head', 'put', 'list', 'delete'] as const

/** What a `get` sends back across the thread boundary: the metadata and the whole body. */
interface GetReply {
  meta: BucketObject
  bytes: Uint8Array
}

async function toBytes(value: BucketPutValue): Promise<Uint8Array | string | null> {
  if (value === null || value === undefined || typeof value === 'string' || value instanceof Uint8Array) return value ?? null
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  if (typeof (value as ReadableStream<Uint8Array>).getReader === 'function') return new Uint8Array(await new Response(value).arrayBuffer())
  throw new SovraError('ERR_BAD_REQUEST', `put: expected a string, ArrayBuffer, Uint8Array, ReadableStream or null, received ${typeof value}`)
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
      return objectBody(reply.meta, new ReadableStream<Uint8Array>({ start(c) {
        if (bytes.byteLength > 0) c.enqueue(bytes)
        c.close()
      } })) as BucketObjectBody
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

/**
 * The host side: runs one call from an isolate on a bucket adapter, returning a structured-clone-safe value.
 * @param bucket the adapter
 * @param method the method the function called
 * @param args its arguments
 */
export async function serveBucketCall(bucket: Bucket, method: string, args: unknown[]): Promise<{ value: unknown; transfer: ArrayBuffer[] }> {
  if (!(METHODS as readonly string[]).includes(method)) {
    throw new SovraError('ERR_BAD_REQUEST', `unknown bucket method ${JSON.stringify(method)}; valid: ${METHODS.join(', ')}`)
  }
  const [a, b, c] = args
  switch (method) {
    case 'get': {
      const obj = await bucket.get(a as string)
      if (obj === null) return { value: null, transfer: [] }
      const bytes = new Uint8Array(await obj.arrayBuffer())
      const plain: BucketObject = {
        key: obj.key, size: obj.size, etag: obj.etag, httpEtag: obj.httpEtag, uploaded: obj.uploaded,
        httpMetadata: { ...obj.httpMetadata }, customMetadata: { ...obj.customMetadata }, version: obj.version,
      }
      return { value: { meta: plain, bytes } satisfies GetReply, transfer: [bytes.buffer as ArrayBuffer] }
    }
    case 'head':
      return { value: await bucket.head(a as string), transfer: [] }
    case 'put':
      return { value: await bucket.put(a as string, b as BucketPutValue, (c ?? {}) as Parameters<Bucket['put']>[2]), transfer: [] }
    case 'list':
      return { value: await bucket.list((a ?? {}) as Parameters<Bucket['list']>[0]), transfer: [] }
    default:
      await bucket.delete(a as string | string[])
      return { value: undefined, transfer: [] }
  }
}
