import type { BucketObject, BucketObjectBody } from './ports.ts'

/**
 * Wraps object metadata and a body stream as an R2-style object body: `body`, `text()`, `json()`,
 * `arrayBuffer()`, readable once.
 * @param meta the object's metadata
 * @param stream its body
 */
export function objectBody(meta: BucketObject, stream: ReadableStream<Uint8Array>): BucketObjectBody {
  let used = false
  const take = (): ReadableStream<Uint8Array> => {
    if (used) throw new TypeError(`The body of "${meta.key}" has already been read`)
    used = true
    return stream
  }
  return {
    ...meta,
    get body() {
      return take()
    },
    get bodyUsed() {
      return used
    },
    arrayBuffer: async () => new Response(take()).arrayBuffer(),
    text: async () => new Response(take()).text(),
    json: async <T>() => (await new Response(take()).json()) as T,
  }
}

/**
 * Metadata in the R2 shape from plain fields.
 * @param fields key, size, etag, time, content type, custom metadata, version
 */
export function objectMeta(fields: {
  key: string
  size: number
  etag: string
  uploaded: Date
  contentType: string | undefined
  customMetadata: Record<string, string>
  version: string | undefined
}): BucketObject {
  return {
    key: fields.key,
    size: fields.size,
    etag: fields.etag,
    httpEtag: `"${fields.etag}"`,
    uploaded: fields.uploaded,
    httpMetadata: fields.contentType === undefined ? {} : { contentType: fields.contentType },
    customMetadata: fields.customMetadata,
    version: fields.version,
  }
}
