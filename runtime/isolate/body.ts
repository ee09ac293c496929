/** Response bodies as the isolate posts them to the host: moved (transferred) rather than copied, within the limit. */

const NO_TRANSFER: ArrayBuffer[] = []
const encoder = new TextEncoder()

/**
 * A chunk with the buffer to transfer: its own when the chunk owns all of it, else a copy made once.
 * @param chunk the bytes
 */
export function transferable(chunk: Uint8Array): [Uint8Array, ArrayBuffer[]] {
  if (chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer) {
    return [chunk, [chunk.buffer]]
  }
  const copy = chunk.slice()
  return [copy, [copy.buffer as ArrayBuffer]]
}

function hasContentType(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'content-type') return true
  return false
}

/**
 * A whole body as it is posted: a string as it is (no encoding, no transfer; see LightResponse.takeSimple), bytes
 * transferred, empty as null. Calls `tooLarge` (which throws) when it is over `maxBytes`.
 * @param body the body
 * @param headers the response's header list
 * @param maxBytes limits.max_body_bytes
 * @param tooLarge builds the error for a body of that many bytes
 */
export function simpleBody(
  body: string | Uint8Array | null,
  headers: readonly string[],
  maxBytes: number,
  tooLarge: (bytes: number) => Error,
): [string | Uint8Array | null, ArrayBuffer[]] {
  if (body === null) return [null, NO_TRANSFER]
  if (typeof body === 'string') {
    // Byte length only when it could matter: a UTF-8 byte is at least one UTF-16 unit and at most three.
    if (body.length * 3 > maxBytes) {
      const bytes = Buffer.byteLength(body)
      if (bytes > maxBytes) throw tooLarge(bytes)
    }
    if (body.length === 0) return [null, NO_TRANSFER]
    // A host Response given a string adds text/plain when there is no content-type; the function removed it, so
    // the body goes as bytes, which add none.
    return hasContentType(headers) ? [body, NO_TRANSFER] : transferable(encoder.encode(body))
  }
  if (body.byteLength > maxBytes) throw tooLarge(body.byteLength)
  return body.byteLength === 0 ? [null, NO_TRANSFER] : transferable(body)
}
