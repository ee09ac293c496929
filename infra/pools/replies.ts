import { errorToBody, isSovraError, SovraError, type ErrorBody } from '../../runtime/core/errors.ts'

const JSON_TYPE = 'application/json; charset=utf-8'
const encoder = new TextEncoder()

/**
 * Builds a JSON response.
 * @param status HTTP status
 * @param body any JSON value
 * @param headers extra headers
 */
export function jsonReply(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': JSON_TYPE, ...headers } })
}

/**
 * Maps what a replica threw to sovra's error status and body: a {@link SovraError} as it is, anything else as
 * ERR_INTERNAL naming the message (a replica has no user code whose internals must stay hidden).
 * @param error what was thrown
 */
export function replicaErrorBody(error: unknown): { status: number; body: ErrorBody } {
  return errorToBody(
    isSovraError(error) ? error : new SovraError('ERR_INTERNAL', `replica error: ${(error as Error).message}`),
  )
}

/**
 * Builds the error response of a replica: sovra's JSON error body, with Retry-After when it carries `retry_after`
 * (429 ERR_QUEUE_FULL).
 * @param error what was thrown
 */
export function errorReply(error: unknown): Response {
  const { status, body } = replicaErrorBody(error)
  const retry = body.error['retry_after']
  return jsonReply(status, body, typeof retry === 'number' ? { 'retry-after': String(retry) } : {})
}

/** An SSE body written as the work goes; writes after the client went away are dropped. */
export interface SseBody {
  stream: ReadableStream<Uint8Array>
  /** Sends one chunk of text as it is (callers format `data: ...\n\n`). */
  push(text: string): void
  /** Sends a last chunk and ends the stream. */
  end(text: string): void
}

/**
 * Creates an SSE body for a streamed response.
 * @param onCancel called when the reader cancels (the client closed the connection)
 */
export function sseBody(onCancel: () => void): SseBody {
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined
  let open = true
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c
    },
    cancel() {
      open = false
      onCancel()
    },
  })
  return {
    stream,
    push(text) {
      if (open) controller?.enqueue(encoder.encode(text))
    },
    end(text) {
      if (!open) return
      open = false
      controller?.enqueue(encoder.encode(text))
      controller?.close()
    },
  }
}

/**
 * The final SSE events of a stream that failed after its headers went out: `data: {"error":...}` and `[DONE]`.
 * @param error what was thrown
 */
export function sseError(error: unknown): string {
  return `data: ${JSON.stringify(replicaErrorBody(error).body)}\n\ndata: [DONE]\n\n`
}
