/**
 * A Response that defers building undici's Response until something needs it, installed as the isolate's global
 * `Response`. On Node 20 `new Response(string)` plus reading its body back costs tens of microseconds (a
 * ReadableStream per body); most handlers return a string or bytes that the isolate only has to hand to the host.
 * The same idea as @hono/node-server's lightweight Response. Semantics are the Fetch standard's: statuses and
 * headers are validated at construction, the default content types are undici's, and every other member
 * (body, text(), clone(), ...) works on the real Response, built on first use.
 */
const NativeResponse = globalThis.Response
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304])
const kLight = Symbol.for('sovra.lightResponse')

type Simple = string | Uint8Array | ArrayBuffer | null

function isSimple(body: unknown): body is Simple {
  return (
    body === null ||
    body === undefined ||
    typeof body === 'string' ||
    body instanceof Uint8Array ||
    body instanceof ArrayBuffer
  )
}

/** The global Response inside an isolate. */
export class LightResponse {
  readonly [kLight] = true
  #body: Simple = null
  #init: ResponseInit | undefined
  #headers: Headers | undefined
  /**
   * The headers as a flat list while no Headers object exists: a response made without `init.headers` (most are:
   * `Response.json(data)`, `new Response(text)`) needs none, and undici's Headers (created, then iterated sorted
   * for the host) was a tenth of an isolate's time per trivial invocation in its CPU profile.
   */
  #list: string[] | undefined
  #native: Response | undefined

  static [Symbol.hasInstance](value: unknown): boolean {
    return (
      value instanceof NativeResponse ||
      (typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kLight] === true)
    )
  }

  /**
   * @param body the body
   * @param init status, statusText, headers
   */
  constructor(body?: BodyInit | null, init?: ResponseInit) {
    if (!isSimple(body)) {
      this.#native = new NativeResponse(body, init)
      return
    }
    const status = init?.status ?? 200
    if (!Number.isInteger(status) || status < 200 || status > 599) {
      throw new RangeError('init["status"] must be in the range of 200 to 599, inclusive.')
    }
    if (body !== null && body !== undefined && NULL_BODY_STATUS.has(status)) {
      throw new TypeError(`Response constructor: Invalid response status code ${status}`)
    }
    if (init?.statusText !== undefined && /[^\t\x20-\x7e\x80-\xff]/.test(init.statusText)) {
      throw new TypeError('Response constructor: Invalid statusText')
    }
    this.#body = body ?? null
    this.#init = init
    if (init?.headers === undefined) {
      this.#list = typeof body === 'string' ? ['content-type', 'text/plain;charset=UTF-8'] : []
      return
    }
    // Given headers are validated now, as the standard says; the object is kept for later reads and writes.
    this.#headers = new Headers(init.headers)
    if (typeof body === 'string' && !this.#headers.has('content-type'))
      this.#headers.set('content-type', 'text/plain;charset=UTF-8')
  }

  /**
   * Response.json, without the body stream.
   * @param data any JSON value
   * @param init status, statusText, headers
   */
  static json(data: unknown, init?: ResponseInit): LightResponse {
    const text = JSON.stringify(data)
    if (text === undefined) throw new TypeError('Value is not JSON serializable')
    if (init?.headers === undefined) {
      const response = new LightResponse(text, init)
      response.#list = ['content-type', 'application/json']
      return response
    }
    const headers = new Headers(init.headers)
    if (!headers.has('content-type')) headers.set('content-type', 'application/json')
    return new LightResponse(text, { ...init, headers })
  }

  static redirect(url: string | URL, status?: number): Response {
    return NativeResponse.redirect(url, status)
  }

  static error(): Response {
    return NativeResponse.error()
  }

  /** The real Response, built once. */
  #real(): Response {
    this.#native ??= new NativeResponse(this.#body as BodyInit | null, {
      status: this.status,
      statusText: this.statusText,
      headers: this.#headersObject(),
    })
    return this.#native
  }

  /** The Headers object, made from the flat list on first use. */
  #headersObject(): Headers {
    if (this.#headers === undefined) {
      const list = this.#list ?? []
      const headers = new Headers()
      for (let i = 0; i + 1 < list.length; i += 2) headers.append(list[i] as string, list[i + 1] as string)
      this.#headers = headers
      this.#list = undefined
    }
    return this.#headers
  }

  /**
   * The head and the whole body, when the body was given whole and nobody has read it: what the isolate sends to
   * the host without touching a stream. Undefined otherwise. A string stays a string: encoding it and
   * transferring the buffer cost the isolate ~1.3 µs per response (measured, a small JSON body), and the host's
   * HTTP server takes a string as it is.
   */
  static takeSimple(
    response: unknown,
  ): { status: number; statusText: string; headers: string[]; body: string | Uint8Array | null } | undefined {
    if (!(response instanceof Object) || (response as Record<symbol, unknown>)[kLight] !== true) return undefined
    const r = response as LightResponse
    if (r.#native !== undefined) return undefined
    const b = r.#body
    const body = b === null || typeof b === 'string' || b instanceof Uint8Array ? b : new Uint8Array(b)
    let headers = r.#list
    if (headers === undefined) {
      headers = []
      for (const [name, value] of r.#headers ?? []) headers.push(name, value)
    }
    return { status: r.status, statusText: r.statusText, headers, body }
  }

  get status(): number {
    return this.#native?.status ?? this.#init?.status ?? 200
  }
  get statusText(): string {
    return this.#native?.statusText ?? this.#init?.statusText ?? ''
  }
  get ok(): boolean {
    return this.status >= 200 && this.status < 300
  }
  get headers(): Headers {
    return this.#native?.headers ?? this.#headersObject()
  }
  get type(): ResponseType {
    return this.#native?.type ?? 'default'
  }
  get url(): string {
    return this.#native?.url ?? ''
  }
  get redirected(): boolean {
    return this.#native?.redirected ?? false
  }
  get body(): ReadableStream<Uint8Array> | null {
    return this.#real().body
  }
  get bodyUsed(): boolean {
    return this.#native?.bodyUsed ?? false
  }
  arrayBuffer(): Promise<ArrayBuffer> {
    return this.#real().arrayBuffer()
  }
  blob(): Promise<Blob> {
    return this.#real().blob()
  }
  bytes(): Promise<Uint8Array> {
    return (this.#real() as Response & { bytes(): Promise<Uint8Array> }).bytes()
  }
  formData(): Promise<FormData> {
    return this.#real().formData()
  }
  json(): Promise<unknown> {
    return this.#real().json()
  }
  text(): Promise<string> {
    return this.#real().text()
  }
  clone(): Response {
    return this.#real().clone()
  }
  get [Symbol.toStringTag](): string {
    return 'Response'
  }
}

/** Installs {@link LightResponse} as the global Response (isolates only; never the host). */
export function installLightResponse(): void {
  Object.defineProperty(globalThis, 'Response', { value: LightResponse, writable: true, configurable: true })
}
