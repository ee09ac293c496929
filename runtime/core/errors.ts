/**
 * Stable error codes. A code never changes meaning once released; tests and operators match on it.
 */
export const ERROR_CODES = {
  ERR_CONFIG: { status: 500, user: true },
  ERR_USAGE: { status: 400, user: true },
  ERR_BAD_REQUEST: { status: 400, user: true },
  ERR_NOT_FOUND: { status: 404, user: true },
  ERR_BODY_TOO_LARGE: { status: 413, user: true },
  ERR_TIER_DENIED: { status: 403, user: true },
  ERR_SIGNATURE: { status: 403, user: true },
  ERR_OVERLOADED: { status: 503, user: false },
  ERR_TIMEOUT: { status: 504, user: false },
  ERR_ISOLATE_LOST: { status: 503, user: false },
  ERR_RESPONSE_TOO_LARGE: { status: 500, user: false },
  ERR_HANDLER: { status: 500, user: false },
  ERR_NO_HANDLER: { status: 501, user: true },
  ERR_BUILD: { status: 500, user: true },
  ERR_FUNCTION_LOAD: { status: 503, user: true },
  ERR_SHUTTING_DOWN: { status: 503, user: false },
  ERR_INTERNAL: { status: 500, user: false },
  /** A bounded queue (an inference replica's admission queue) is full; retry after `retry_after` seconds. */
  ERR_QUEUE_FULL: { status: 429, user: false },
  /** A model's output broke its contract (truncated or schema-invalid JSON); never repaired. */
  ERR_MODEL_OUTPUT: { status: 502, user: false },
  /** An upstream (an inference replica or an external provider) failed or answered with an error. */
  ERR_UPSTREAM: { status: 502, user: false },
  /** A caller did not prove who they are (missing, expired or invalid token). */
  ERR_UNAUTHENTICATED: { status: 401, user: true },
  /** The caller is known but may not do this (the control plane: not an operator, or not on loopback). */
  ERR_FORBIDDEN: { status: 403, user: true },
  /** A change lacks the approvals its risk class needs, or an approval breaks the rules (author, duplicate). */
  ERR_APPROVAL: { status: 403, user: true },
  /** A request needs a legal basis (external providers) and carried none. */
  ERR_LEGAL_BASIS: { status: 403, user: true },
  /** A CLI command's host (`--url`, `SOVRA_URL`, or the one it found) does not answer, or stopped answering. */
  ERR_HOST_UNREACHABLE: { status: 502, user: true },
} as const satisfies Record<string, { status: number; user: boolean }>

/** One of the stable error codes in {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES

/** Options for {@link SovraError}. */
export interface SovraErrorOptions {
  /** The underlying error, kept for logs; never sent to callers. */
  cause?: unknown
  /** Overrides the HTTP status the code maps to by default. */
  status?: number
  /** Extra fields a caller may rely on (e.g. `retryAfter` seconds); sent in error bodies. */
  details?: Record<string, unknown>
}

/**
 * The one error type sovra throws: a stable `code`, a message that says what was wrong, the value received and
 * what is valid, and whether it is the user's doing (bad config, bad input) or a system fault.
 *
 * @example
 * throw new SovraError('ERR_CONFIG', 'functions[0].limits.timeout_ms: expected a positive integer, received -1')
 */
export class SovraError extends Error {
  override readonly name = 'SovraError'
  readonly code: ErrorCode
  readonly status: number
  readonly details: Record<string, unknown> | undefined

  /**
   * @param code a stable code from {@link ERROR_CODES}
   * @param message what was wrong, the value received and what is valid
   * @param options cause, status override, details
   */
  constructor(code: ErrorCode, message: string, options: SovraErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.status = options.status ?? ERROR_CODES[code].status
    this.details = options.details
  }

  /** True when the error is the caller's or the author's doing (config, input), not a crash of sovra. */
  get isUserError(): boolean {
    return ERROR_CODES[this.code].user
  }
}

/**
 * Tells whether a value is a {@link SovraError}, also across realms (worker threads, bundles with their own copy).
 * @param value anything caught
 */
export function isSovraError(value: unknown): value is SovraError {
  return (
    value instanceof SovraError ||
    (typeof value === 'object' &&
      value !== null &&
      (value as { name?: unknown }).name === 'SovraError' &&
      typeof (value as { code?: unknown }).code === 'string' &&
      (value as { code: string }).code in ERROR_CODES)
  )
}

/**
 * Rebuilds an error that crossed a boundary as plain data (a thread message, an HTTP body): a real
 * {@link SovraError} when it carries a known code, else an Error with the same name and message.
 * @param parts the error's name, message, code and details
 */
export function reviveError(parts: {
  name?: string
  message?: string
  code?: string
  details?: Record<string, unknown>
}): Error {
  const message = parts.message ?? 'unknown error'
  if (parts.code !== undefined && parts.code in ERROR_CODES) {
    return new SovraError(
      parts.code as ErrorCode,
      message,
      parts.details === undefined ? {} : { details: parts.details },
    )
  }
  const e = new Error(message)
  e.name = parts.name ?? 'Error'
  if (parts.code !== undefined) (e as Error & { code?: string }).code = parts.code
  return e
}

/** The JSON body of every error response sovra produces. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; invocation_id?: string } & Record<string, unknown>
}

/**
 * Maps an error to the JSON body and status every host answers with. Only {@link SovraError} messages are
 * passed through; anything else becomes a generic message, so stacks and internals never reach a caller.
 * @param error what was thrown
 * @param invocationId the invocation it belongs to, if any
 */
export function errorToBody(error: unknown, invocationId?: string): { status: number; body: ErrorBody } {
  const e = isSovraError(error)
    ? error
    : new SovraError('ERR_HANDLER', 'The function threw an error; see the log line with this invocation id.')
  const body: ErrorBody = { error: { code: e.code, message: e.message, ...e.details } }
  if (invocationId !== undefined) body.error.invocation_id = invocationId
  return { status: e.status, body }
}

/**
 * Builds the HTTP error response for an error (one mapping for every host, like hono's HTTPException).
 * @param error what was thrown
 * @param invocationId the invocation it belongs to, if any
 */
export function errorToResponse(error: unknown, invocationId?: string): Response {
  const { status, body } = errorToBody(error, invocationId)
  const headers = new Headers({ 'content-type': 'application/json; charset=utf-8' })
  if (invocationId !== undefined) headers.set('x-sovra-invocation-id', invocationId)
  const retryAfter = body.error['retry_after']
  if (typeof retryAfter === 'number') headers.set('retry-after', String(retryAfter))
  return new Response(JSON.stringify(body), { status, headers })
}
