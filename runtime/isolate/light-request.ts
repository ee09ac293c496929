/**
 * The Request a function receives in an isolate, built lazily. undici's `new Request()` costs about a quarter of an
 * isolate's time per trivial invocation on Node 20 (it creates an AbortSignal and validates every header); most
 * functions only read the method, URL, headers and body text. This object answers those from the data that crossed
 * the thread boundary and builds the real Request on first use of anything else. It is an `instanceof Request`, and
 * `new Request(it)` and `fetch(it)` work, because the isolate's global Request and fetch unwrap it (the approach of
 * @hono/node-server's lightweight Request).
 */
import { headerPairs, type HeaderList } from './codec.ts'

const NativeRequest = globalThis.Request
const nativeFetch = globalThis.fetch
const kLight = Symbol.for('sovra.lightRequest')
const kReal = Symbol('sovra.realRequest')
const decoder = new TextDecoder()

interface Light {
  [kReal](): Request
}

function isLight(value: unknown): value is Light {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kLight] === true
}

/** The isolate's global Request: the native one, taking a lazy request as input too. */
export class IsolateRequest extends NativeRequest {
  /**
   * @param input a URL, a Request or a lazy request
   * @param init as for Request
   */
  constructor(input: RequestInfo | URL, init?: RequestInit) {
    super(isLight(input) ? input[kReal]() : input, init)
  }
}

/** A request that builds undici's Request only when something needs it. */
export class LightRequest {
  readonly [kLight] = true
  readonly #method: string
  readonly #url: string
  readonly #list: HeaderList
  readonly #body: Uint8Array | null
  #headers: Headers | undefined
  #real: Request | undefined
  #used = false

  /**
   * @param method the HTTP method
   * @param url the absolute URL
   * @param headers the headers as received, flat
   * @param body the buffered body, null for none
   */
  constructor(method: string, url: string, headers: HeaderList, body: Uint8Array | null) {
    this.#method = method
    this.#url = url
    this.#list = headers
    this.#body = body
  }

  [kReal](): Request {
    if (this.#real === undefined) {
      const init: RequestInit = { method: this.#method, headers: this.headers }
      if (this.#body !== null && !this.#used) init.body = this.#body as Uint8Array<ArrayBuffer>
      this.#real = new NativeRequest(this.#url, init)
    }
    return this.#real
  }

  get method(): string {
    return this.#method
  }
  get url(): string {
    return this.#url
  }
  get headers(): Headers {
    if (this.#real !== undefined) return this.#real.headers
    this.#headers ??= new Headers(headerPairs(this.#list))
    return this.#headers
  }
  get bodyUsed(): boolean {
    return this.#used || (this.#real?.bodyUsed ?? false)
  }
  get body(): ReadableStream<Uint8Array> | null {
    return this.#used ? null : this[kReal]().body
  }

  #take(): Uint8Array {
    if (this.#used) throw new TypeError('Body is unusable: Body has already been read')
    this.#used = true
    return this.#body ?? new Uint8Array(0)
  }

  async text(): Promise<string> {
    return this.#real === undefined ? decoder.decode(this.#take()) : this.#real.text()
  }
  async json(): Promise<unknown> {
    return JSON.parse(await this.text())
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.#real === undefined ? (this.#take().slice().buffer as ArrayBuffer) : this.#real.arrayBuffer()
  }
  async bytes(): Promise<Uint8Array> {
    return this.#real === undefined ? this.#take().slice() : new Uint8Array(await this.#real.arrayBuffer())
  }
  blob(): Promise<Blob> {
    return this.#real === undefined && this.#used
      ? Promise.reject(new TypeError('Body is unusable: Body has already been read'))
      : this[kReal]().blob()
  }
  formData(): Promise<FormData> {
    return this.#real === undefined && this.#used
      ? Promise.reject(new TypeError('Body is unusable: Body has already been read'))
      : this[kReal]().formData()
  }
  clone(): Request {
    if (this.#real === undefined && this.#used) throw new TypeError('Request.clone: Body has already been consumed.')
    return this[kReal]().clone()
  }
  get [Symbol.toStringTag](): string {
    return 'Request'
  }
}

// Every other member of Request reads the real one.
for (const name of [
  'destination',
  'referrer',
  'referrerPolicy',
  'mode',
  'credentials',
  'cache',
  'redirect',
  'integrity',
  'keepalive',
  'isReloadNavigation',
  'isHistoryNavigation',
  'signal',
  'duplex',
]) {
  Object.defineProperty(LightRequest.prototype, name, {
    get(this: LightRequest) {
      return (this[kReal]() as unknown as Record<string, unknown>)[name]
    },
    configurable: true,
  })
}
Object.setPrototypeOf(LightRequest.prototype, IsolateRequest.prototype)

/** Installs the isolate's Request and fetch (isolates only; never the host). */
export function installLightRequest(): void {
  Object.defineProperty(globalThis, 'Request', { value: IsolateRequest, writable: true, configurable: true })
  Object.defineProperty(globalThis, 'fetch', {
    value: function fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
      return nativeFetch(isLight(input) ? input[kReal]() : input, init)
    },
    writable: true,
    configurable: true,
  })
}
