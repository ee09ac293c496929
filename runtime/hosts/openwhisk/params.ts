import { SovraError } from '../../core/errors.ts'

/** The raw-http web action parameters OpenWhisk passes (docs/platform-notes.md: `__ow_method` is lowercase, bodies base64). */
export interface WebParams {
  __ow_method: string
  __ow_headers?: Record<string, string>
  __ow_path?: string
  __ow_query?: string
  __ow_body?: string
  __ow_user?: string
}

/** What a web action returns: OpenWhisk turns it into the HTTP response. */
export interface WebResult {
  statusCode: number
  headers: Record<string, string | string[]>
  /** Text, or base64 for binary content types. */
  body?: string
}

/** OpenWhisk's limit on an action's result (and its parameters). */
export const RESULT_LIMIT_BYTES = 1024 * 1024

/** Content types a web action result carries as text; everything else travels base64. */
export const TEXT_TYPES =
  /^(text\/|application\/(json|javascript|xml|x-www-form-urlencoded|problem\+json|ld\+json)|image\/svg\+xml)/i

/**
 * True when a web action's params describe an HTTP request.
 * @param params the action's params
 */
export function isWebParams(params: Record<string, unknown>): params is Record<string, unknown> & WebParams {
  return typeof params['__ow_method'] === 'string'
}

/**
 * Builds the `Request` a raw-http web action call stands for.
 * @param p the `__ow_*` params
 * @param maxBodyBytes the function's body limit (413 above it, as on the embedded host)
 * @param fn the function name, for messages
 */
export function requestFromParams(p: WebParams, maxBodyBytes: number, fn: string): Request {
  const method = p.__ow_method.toUpperCase()
  const headers = new Headers()
  for (const [k, v] of Object.entries(p.__ow_headers ?? {})) headers.set(k, v)
  const host = headers.get('x-forwarded-host') ?? headers.get('host') ?? 'localhost'
  const proto = headers.get('x-forwarded-proto') ?? 'https'
  const path =
    p.__ow_path === undefined || p.__ow_path === ''
      ? '/'
      : p.__ow_path.startsWith('/')
        ? p.__ow_path
        : `/${p.__ow_path}`
  const url = `${proto}://${host}${path}${p.__ow_query ? `?${p.__ow_query}` : ''}`
  let body: Uint8Array | undefined
  if (p.__ow_body !== undefined && p.__ow_body !== '' && method !== 'GET' && method !== 'HEAD') {
    // raw-http: the body is base64 (docs/platform-notes.md).
    body = Uint8Array.from(atob(p.__ow_body), (c) => c.charCodeAt(0))
    if (body.byteLength > maxBodyBytes) {
      throw new SovraError(
        'ERR_BODY_TOO_LARGE',
        `request body is over limits.max_body_bytes of function "${fn}" (${maxBodyBytes} bytes); received ${body.byteLength} bytes`,
      )
    }
  }
  return new Request(url, { method, headers, ...(body === undefined ? {} : { body: body as unknown as BodyInit }) })
}

function toBase64(bytes: Uint8Array): string {
  let s = ''
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(s)
}

/**
 * Maps a `Response` to a web action result: every header (Set-Cookie as a list), text bodies as text, others
 * base64. Streams are read whole (OpenWhisk has no streaming results). Throws ERR_RESPONSE_TOO_LARGE when the
 * result would pass OpenWhisk's 1 MB limit, instead of letting the platform truncate or refuse it.
 * @param res the function's response
 * @param maxBodyBytes the function's body limit
 */
export async function resultFromResponse(res: Response, maxBodyBytes: number): Promise<WebResult> {
  const headers: Record<string, string | string[]> = {}
  res.headers.forEach((v, k) => {
    if (k !== 'set-cookie') headers[k] = v
  })
  const cookies = res.headers.getSetCookie()
  if (cookies.length > 0) headers['set-cookie'] = cookies.length === 1 ? (cookies[0] as string) : cookies
  const bytes = res.body === null ? new Uint8Array(0) : new Uint8Array(await res.arrayBuffer())
  if (bytes.byteLength > maxBodyBytes) {
    throw new SovraError(
      'ERR_RESPONSE_TOO_LARGE',
      `response body is ${bytes.byteLength} bytes, over limits.max_body_bytes (${maxBodyBytes}); raise the limit or return less`,
    )
  }
  const type = res.headers.get('content-type') ?? ''
  const text = bytes.byteLength === 0 || TEXT_TYPES.test(type)
  const body = text ? new TextDecoder().decode(bytes) : toBase64(bytes)
  const result: WebResult = { statusCode: res.status, headers, ...(bytes.byteLength === 0 ? {} : { body }) }
  const size = JSON.stringify(result).length
  if (size > RESULT_LIMIT_BYTES) {
    throw new SovraError(
      'ERR_RESPONSE_TOO_LARGE',
      `the action result is ${size} bytes (body ${bytes.byteLength} bytes${text ? '' : ', base64'}), over OpenWhisk's result limit of ${RESULT_LIMIT_BYTES} bytes; return less, or put the data in a bucket and return its key`,
    )
  }
  return result
}
