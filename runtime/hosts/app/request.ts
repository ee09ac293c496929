import type { IncomingMessage } from 'node:http'
import { SovraError } from '../../core/errors.ts'
import type { RequestHead } from '../../isolate/pool.ts'
import { concatBytes, toHeaderList } from '../../isolate/codec.ts'

const NO_BODY = new Set(['GET', 'HEAD'])

function tooLarge(fn: string, limit: number, received: string): SovraError {
  return new SovraError(
    'ERR_BODY_TOO_LARGE',
    `request body is over limits.max_body_bytes of function "${fn}" (${limit} bytes); received ${received}`,
  )
}

/**
 * Reads a body up to `limit` bytes; throws ERR_BODY_TOO_LARGE (413) as soon as it is exceeded, without
 * buffering the rest.
 * @param chunks the body
 * @param limit the most bytes allowed
 * @param fn the function, for the message
 */
export async function readLimited(chunks: AsyncIterable<Uint8Array>, limit: number, fn: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  let total = 0
  for await (const chunk of chunks) {
    total += chunk.byteLength
    if (total > limit) throw tooLarge(fn, limit, `more than ${limit} bytes`)
    parts.push(chunk)
  }
  return concatBytes(parts, total)
}

function checkLength(value: string | null | undefined, limit: number, fn: string): void {
  if (value === undefined || value === null) return
  const n = Number(value)
  if (Number.isFinite(n) && n > limit) throw tooLarge(fn, limit, `content-length ${value}`)
}

/**
 * Turns a Node request into the plain head an isolate takes, reading the body within the limit. Cheaper than
 * building a Request: the raw header list is reused as it is.
 * @param incoming the Node request
 * @param url the absolute URL
 * @param limit the function's max_body_bytes
 * @param fn the function name
 */
export async function headFromIncoming(
  incoming: IncomingMessage,
  url: string,
  limit: number,
  fn: string,
): Promise<RequestHead> {
  // Node's rawHeaders is already the flat list the isolate takes.
  const headers = incoming.rawHeaders
  const method = incoming.method ?? 'GET'
  checkLength(incoming.headers['content-length'], limit, fn)
  const body = NO_BODY.has(method) ? null : await readLimited(incoming, limit, fn)
  return { method, url, headers, body }
}

/**
 * The same for a Web Request (in-memory `app.request()` calls, other runtimes).
 * @param request the request
 * @param limit the function's max_body_bytes
 * @param fn the function name
 */
export async function headFromRequest(request: Request, limit: number, fn: string): Promise<RequestHead> {
  checkLength(request.headers.get('content-length'), limit, fn)
  const body =
    request.body === null || NO_BODY.has(request.method)
      ? null
      : await readLimited(request.body as unknown as AsyncIterable<Uint8Array>, limit, fn)
  return { method: request.method, url: request.url, headers: toHeaderList(request.headers), body }
}
