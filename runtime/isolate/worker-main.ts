/**
 * The program each isolate (worker thread) runs: loads one function bundle, then serves invocations from the
 * host. Built to a single file by esbuild at start (see worker-script.ts); never imported by the host.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads'
import { pathToFileURL } from 'node:url'
import { installLightResponse, LightResponse } from './fast-response.ts'
import { installLightRequest, LightRequest } from './light-request.ts'
import { bucketClient, type CallHost } from '../bindings/bucket.ts'
import { aiClient } from '../bindings/ai.ts'
import type { ExecutionContext, FunctionModule, ScheduledController } from '../core/index.ts'
import {
  concatBytes,
  toHeaderList,
  Outbox,
  serializeError,
  type AckMessage,
  type BatchMessage,
  type EventMessage,
  type FetchMessage,
  type HostMessage,
  type SerializedError,
  type WorkerInit,
  type WorkerMessage,
} from './codec.ts'

installLightResponse()
installLightRequest()

if (parentPort === null) throw new Error('worker-main must run in a worker thread')
const port: MessagePort = parentPort
// A spare isolate starts without a function and receives its init as the first message (see spares.ts).
const init: WorkerInit = (workerData as WorkerInit | null) ?? (await new Promise<WorkerInit>((resolve) => {
  port.once('message', (msg: { type: 'init'; init: WorkerInit }) => resolve(msg.init))
}))

interface Running {
  deadline: number
  /** Created the first time the function reads ctx.signal: AbortSignals are costly on Node 20 and most never are. */
  controller: AbortController | undefined
  timer: NodeJS.Timeout | undefined
  /** Set once the invocation is cancelled or past its deadline. */
  aborted: { reason: unknown } | undefined
  credit: number
  wake: (() => void) | undefined
  reader: ReadableStreamDefaultReader<Uint8Array> | undefined
}
const running = new Map<number, Running>()

const outbox = new Outbox<WorkerMessage>((msg, transfer) => port.postMessage(msg, transfer))
const post = (msg: WorkerMessage, transfer?: ArrayBuffer[]): void => outbox.push(msg, transfer)

/** Transfers the chunk's buffer when the chunk owns all of it, else copies once. */
function transferable(chunk: Uint8Array): [Uint8Array, ArrayBuffer[]] {
  if (chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer) {
    return [chunk, [chunk.buffer]]
  }
  const copy = chunk.slice()
  return [copy, [copy.buffer as ArrayBuffer]]
}

const env: Record<string, unknown> = { ...init.env.vars, ...init.env.secrets }

// Bindings run on the host: each call is a message, answered by a result message with the same call id.
const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
let nextCallId = 1
const callHost = (binding: string): CallHost => (method, args, transfer) =>
  new Promise((resolve, reject) => {
    const callId = nextCallId++
    calls.set(callId, { resolve, reject })
    post({ type: 'call', callId, binding, method, args }, transfer)
  })
for (const b of init.env.bindings ?? []) {
  if (b.type === 'bucket') env[b.name] = bucketClient(callHost(b.name))
  else if (b.type === 'ai') env[b.name] = aiClient(callHost(b.name))
}
let mod: FunctionModule<Record<string, unknown>>

// A rejection nobody awaited inside a function must not take the whole isolate down; it is reported instead.
process.on('unhandledRejection', (reason) => {
  console.error('[sovra] unhandled rejection in function:', reason)
})

function makeContext(msg: FetchMessage | EventMessage, state: Running, waits: Promise<unknown>[], errors: SerializedError[]): ExecutionContext {
  return {
    waitUntil(promise: Promise<unknown>) {
      waits.push(Promise.resolve(promise).catch((e: unknown) => void errors.push(serializeError(e))))
    },
    get signal() {
      return signalOf(state)
    },
    deadline: msg.deadline,
    invocation: msg.invocation,
    principal: msg.principal,
  }
}

async function settle(waits: Promise<unknown>[]): Promise<void> {
  // waitUntil may be called again while earlier promises run: keep going until no new ones arrive.
  for (let seen = 0; seen < waits.length; ) {
    const batch = waits.slice(seen)
    seen = waits.length
    await Promise.all(batch)
  }
}

function startRun(id: number, deadline: number): Running {
  const state: Running = { deadline, controller: undefined, timer: undefined, aborted: undefined, credit: init.streamWindow, wake: undefined, reader: undefined }
  running.set(id, state)
  return state
}

function endRun(id: number, state: Running): void {
  running.delete(id)
  clearTimeout(state.timer)
}

// Cooperative code sees the deadline through ctx.signal; code that never yields is terminated by the host.
function signalOf(state: Running): AbortSignal {
  if (state.controller === undefined) {
    state.controller = new AbortController()
    if (state.aborted !== undefined) {
      state.controller.abort(state.aborted.reason)
    } else {
      state.timer = setTimeout(() => abortRun(state, new DOMException('The invocation deadline passed', 'TimeoutError')), Math.max(0, state.deadline - Date.now()))
      state.timer.unref()
    }
  }
  return state.controller.signal
}

function abortRun(state: Running, reason: unknown): void {
  if (state.aborted !== undefined) return
  state.aborted = { reason }
  clearTimeout(state.timer)
  state.controller?.abort(reason)
  const wake = state.wake
  state.wake = undefined
  wake?.()
}

const nextMacrotask = (): Promise<'tick'> => new Promise((resolve) => setImmediate(resolve, 'tick'))

async function runFetch(msg: FetchMessage): Promise<void> {
  const state = startRun(msg.id, msg.deadline)
  const waits: Promise<unknown>[] = []
  const errors: SerializedError[] = []
  let headSent = false
  try {
    const handler = mod.fetch
    if (typeof handler !== 'function') {
      throw Object.assign(new Error(`function "${msg.invocation.function}" has no fetch handler; it exports: ${handlerNames().join(', ') || 'nothing'}`), { name: 'SovraError', code: 'ERR_NO_HANDLER' })
    }
    // A lazy Request (light-request.ts); ctx.signal carries aborts, request.signal is never aborted.
    const requestBody = msg.body !== null && msg.method !== 'GET' && msg.method !== 'HEAD' ? msg.body : null
    const request = new LightRequest(msg.method, msg.url, msg.headers, requestBody) as unknown as Request
    const response = await handler.call(mod, request, env, makeContext(msg, state, waits, errors))
    if (!(response instanceof Response)) {
      throw Object.assign(new Error(`fetch handler of "${msg.invocation.function}" returned ${response === undefined ? 'undefined' : typeof response}; it must return a Response`), { name: 'SovraError', code: 'ERR_HANDLER' })
    }
    const simple = LightResponse.takeSimple(response)
    if (simple !== undefined) {
      // Fast path: the whole body was given as a string or bytes; no stream to read.
      if (simple.body !== null && simple.body.byteLength > init.maxBodyBytes) throw tooLarge(simple.body.byteLength)
      const [b, transfer] = simple.body === null || simple.body.byteLength === 0 ? [null, []] : transferable(simple.body)
      const head = { type: 'response' as const, id: msg.id, status: simple.status, statusText: simple.statusText, headers: simple.headers, body: b, end: true }
      await settleAndPost(msg.id, waits, errors, (done) => post({ ...head, done }, transfer))
      return
    }
    const head = { type: 'response' as const, id: msg.id, status: response.status, statusText: response.statusText, headers: toHeaderList(response.headers) }
    const body = response.body
    if (body === null) {
      await settleAndPost(msg.id, waits, errors, (done) => post({ ...head, body: null, end: true, done }))
      return
    }
    const reader = body.getReader()
    state.reader = reader
    // Fast path: a body that is complete within this turn (a string, bytes) goes in one message with the head.
    const chunks: Uint8Array[] = []
    let total = 0
    let pending = reader.read()
    for (;;) {
      const r = await Promise.race([pending, nextMacrotask()])
      if (r === 'tick') break
      if (r.done) {
        if (total > init.maxBodyBytes) throw tooLarge(total)
        const whole = concatBytes(chunks, total)
        const [b, transfer] = whole.byteLength === 0 ? [null, []] : transferable(whole)
        await settleAndPost(msg.id, waits, errors, (done) => post({ ...head, body: b, end: true, done }, transfer))
        return
      }
      chunks.push(r.value)
      total += r.value.byteLength
      pending = reader.read()
    }
    // Streaming: the head and what has arrived so far now, the rest as it comes, within the credit window.
    post({ ...head, body: null, end: false, done: false })
    headSent = true
    for (const c of chunks) await sendChunk(msg.id, state, c)
    for (;;) {
      const r = await pending
      if (r.done) break
      await sendChunk(msg.id, state, r.value)
      if (state.aborted !== undefined) break
      pending = reader.read()
    }
    post({ type: 'end', id: msg.id, done: false })
    await settle(waits)
    post({ type: 'done', id: msg.id, errors, noRetry: false })
  } catch (error) {
    post({ type: 'error', id: msg.id, error: serializeError(error), afterHead: headSent })
    await settle(waits).catch(() => undefined)
    post({ type: 'done', id: msg.id, errors, noRetry: false })
  } finally {
    endRun(msg.id, state)
  }
}

/** Posts the complete response; folds `done` into it when there is nothing to wait for. */
async function settleAndPost(id: number, waits: Promise<unknown>[], errors: SerializedError[], postHead: (done: boolean) => void): Promise<void> {
  if (waits.length === 0) return postHead(true)
  postHead(false)
  await settle(waits)
  post({ type: 'done', id, errors, noRetry: false })
}

function tooLarge(total: number): Error {
  return Object.assign(
    new Error(`response body is ${total} bytes, over limits.max_body_bytes (${init.maxBodyBytes}); raise the limit or stream the body (a ReadableStream that produces it over time)`),
    { name: 'SovraError', code: 'ERR_RESPONSE_TOO_LARGE' },
  )
}

async function sendChunk(id: number, state: Running, chunk: Uint8Array): Promise<void> {
  while (state.credit <= 0 && state.aborted === undefined) {
    await new Promise<void>((resolve) => {
      state.wake = resolve
    })
  }
  if (state.aborted !== undefined) return
  state.credit--
  const [c, transfer] = transferable(chunk)
  post({ type: 'chunk', id, chunk: c }, transfer)
}

async function runEvent(msg: EventMessage): Promise<void> {
  const state = startRun(msg.id, msg.deadline)
  const waits: Promise<unknown>[] = []
  const errors: SerializedError[] = []
  let noRetry = false
  try {
    const ctx = makeContext(msg, state, waits, errors)
    if (msg.handler === 'scheduled') {
      if (typeof mod.scheduled !== 'function') throw noHandler(msg, 'scheduled')
      const controller: ScheduledController = {
        cron: msg.cron ?? '',
        scheduledTime: msg.scheduledTime ?? Date.now(),
        noRetry: () => {
          noRetry = true
        },
      }
      await mod.scheduled.call(mod, controller, env, ctx)
    } else {
      if (typeof mod.object !== 'function' || msg.event === undefined) throw noHandler(msg, 'object')
      await mod.object.call(mod, msg.event, env, ctx)
    }
    await settle(waits)
    post({ type: 'done', id: msg.id, errors, noRetry })
  } catch (error) {
    post({ type: 'error', id: msg.id, error: serializeError(error), afterHead: false })
    await settle(waits).catch(() => undefined)
    post({ type: 'done', id: msg.id, errors, noRetry })
  } finally {
    endRun(msg.id, state)
  }
}

function noHandler(msg: EventMessage, name: string): Error {
  return Object.assign(new Error(`function "${msg.invocation.function}" has no ${name} handler; it exports: ${handlerNames().join(', ') || 'nothing'}`), {
    name: 'SovraError',
    code: 'ERR_NO_HANDLER',
  })
}

function handlerNames(): string[] {
  return ['fetch', 'scheduled', 'object'].filter((n) => typeof (mod as Record<string, unknown>)[n] === 'function')
}

function onMessage(msg: HostMessage | BatchMessage<HostMessage>): void {
  switch (msg.type) {
    case 'batch':
      for (const m of msg.messages) onMessage(m)
      break
    case 'fetch':
      void runFetch(msg)
      break
    case 'event':
      void runEvent(msg)
      break
    case 'cancel': {
      const state = running.get(msg.id)
      if (state) {
        abortRun(state, new DOMException(msg.reason, 'AbortError'))
        void state.reader?.cancel(msg.reason).catch(() => undefined)
      }
      break
    }
    case 'result': {
      const pending = calls.get(msg.callId)
      calls.delete(msg.callId)
      if (pending === undefined) break
      if (msg.ok) pending.resolve(msg.value)
      else pending.reject(Object.assign(new Error(msg.error?.message ?? 'binding call failed'), { name: msg.error?.name ?? 'Error', code: msg.error?.code }))
      break
    }
    case 'stop':
      outbox.flush()
      port.close()
      break
    case 'ack': {
      const state = running.get((msg as AckMessage).id)
      if (state) {
        state.credit += msg.n
        const wake = state.wake
        state.wake = undefined
        wake?.()
      }
      break
    }
  }
}

try {
  const loaded = (await import(pathToFileURL(init.bundlePath).href)) as { default?: unknown }
  const candidate = loaded.default
  if (typeof candidate !== 'object' || candidate === null) {
    throw new Error(`the module must export default an object with fetch, scheduled or object handlers; its default export is ${candidate === null ? 'null' : typeof candidate}`)
  }
  mod = candidate as FunctionModule<Record<string, unknown>>
  const names = handlerNames()
  if (names.length === 0) throw new Error('the default export has no fetch, scheduled or object handler')
  port.on('message', onMessage)
  post({ type: 'ready', handlers: names })
} catch (error) {
  post({ type: 'init-error', error: serializeError(error) })
}
