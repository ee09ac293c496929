/**
 * The program each isolate (worker thread) runs: loads one function bundle, then serves invocations from the
 * host. Built to a single file by esbuild at start (see worker-script.ts); never imported by the host.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { parentPort, workerData, type MessagePort } from 'node:worker_threads'
import { pathToFileURL } from 'node:url'
import { format } from 'node:util'
import { installLightResponse, LightResponse } from './fast-response.ts'
import { installLightRequest, LightRequest } from './light-request.ts'
import { simpleBody, transferable } from './body.ts'
import { abortRun, newRun, signalOf, type Running } from './run-state.ts'
import type { CallHost } from '../bindings/define.ts'
import { bindingKind } from '../bindings/registry.ts'
import type { ExecutionContext } from '../core/index.ts'
import { SovraError, reviveError } from '../core/errors.ts'
import {
  dispatchEvent,
  dispatchFetch,
  functionModule,
  handlerNames,
  WaitUntil,
  type AnyModule,
} from '../core/dispatch.ts'
import {
  concatBytes,
  toHeaderList,
  Outbox,
  serializeError,
  type AckMessage,
  type BatchMessage,
  type EventMessage,
  type FetchMessage,
  type HeaderList,
  type HostMessage,
  type LogMessage,
  type WorkerInit,
  type WorkerMessage,
} from './codec.ts'

installLightResponse()
installLightRequest()

if (parentPort === null) throw new Error('worker-main must run in a worker thread')
const port: MessagePort = parentPort
// A spare isolate starts without a function and receives its init as the first message (see spares.ts).
const init: WorkerInit =
  (workerData as WorkerInit | null) ??
  (await new Promise<WorkerInit>((resolve) => {
    port.once('message', (msg: { type: 'init'; init: WorkerInit }) => resolve(msg.init))
  }))

const running = new Map<number, Running>()

const outbox = new Outbox<WorkerMessage>((msg, transfer) => port.postMessage(msg, transfer))
const post = (msg: WorkerMessage, transfer?: ArrayBuffer[]): void => outbox.push(msg, transfer)

const env: Record<string, unknown> = { ...init.env.vars, ...init.env.secrets }

// Bindings run on the host: each call is a message, answered by a result message with the same call id.
const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
let nextCallId = 1
/**
 * The invocation (its message) the running code belongs to, followed across awaits, when a binding needs to know
 * who calls it (EnvSpec.perCaller), or once the function wrote to the console (its lines name their invocation).
 * Only then: on Node 20 an AsyncLocalStorage in use installs promise hooks that every invocation of the isolate pays
 * for, and an AsyncLocalStorage costs nothing until its first `run`. The call message names the invocation; the host
 * finds its principal.
 */
const current = new AsyncLocalStorage<FetchMessage | EventMessage>()
let tracking = init.env.perCaller === true
const callHost =
  (binding: string): CallHost =>
  (method, args, transfer) =>
    new Promise((resolve, reject) => {
      const callId = nextCallId++
      calls.set(callId, { resolve, reject })
      // Only kinds that asked for it learn the caller (CallContext), even when the console turned tracking on.
      const invocation = init.env.perCaller === true ? current.getStore()?.id : undefined
      post(
        invocation === undefined
          ? { type: 'call', callId, binding, method, args }
          : { type: 'call', callId, binding, method, args, invocation },
        transfer,
      )
    })
for (const b of init.env.bindings ?? []) env[b.name] = bindingKind(b.type).client(callHost(b.name), b)
let mod: AnyModule

/** The invocation started last: what a timer or promise left behind after its response most likely belongs to. */
let lastStarted: string | undefined
/** Its message: the trace id of a console line written before tracking began. */
let lastMessage: FetchMessage | EventMessage | undefined
/** The message id of the last invocation started without tracking (0: none). */
let lastUntracked = 0

/** The longest console line sent to the host; the rest is cut (the host keeps lines in memory and on disk). */
const MAX_LOG_CHARS = 16_384

/**
 * The trace a request carries: W3C `traceparent`'s trace id, else `x-request-id` (the host's request id).
 * Ref: https://www.w3.org/TR/trace-context/#traceparent-header
 */
function traceOf(headers: HeaderList): string | undefined {
  let requestId: string | undefined
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]
    if (name === 'traceparent') {
      const m = /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}/.exec(headers[i + 1] as string)
      if (m !== null && !/^0+$/.test(m[1] as string)) return m[1]
    } else if (name === 'x-request-id') requestId = (headers[i + 1] as string).slice(0, 128)
  }
  return requestId
}

/**
 * Sends a console line to the host, named by the invocation it belongs to: the tracked one; else, for code of an
 * invocation that started before tracking began, the only one running (several: none is named). The first line
 * turns tracking on for the invocations that start after it.
 */
function sendLog(method: LogMessage['method'], args: unknown[]): void {
  let message = format(...args)
  if (message.length > MAX_LOG_CHARS)
    message = `${message.slice(0, MAX_LOG_CHARS)}... [${message.length - MAX_LOG_CHARS} more characters]`
  tracking = true
  let msg = current.getStore()
  if (msg === undefined && running.size === 1) {
    const [id, only] = running.entries().next().value as [number, Running]
    if (id <= lastUntracked) {
      if (lastMessage?.id !== id) return post({ type: 'log', method, message, invocation: only.invocationId })
      msg = lastMessage
    }
  }
  if (msg === undefined) return post({ type: 'log', method, message })
  const trace = msg.type === 'fetch' ? traceOf(msg.headers) : undefined
  post(
    trace === undefined
      ? { type: 'log', method, message, invocation: msg.invocationId }
      : { type: 'log', method, message, invocation: msg.invocationId, trace },
  )
}

// The function's console goes to the host as structured lines (function, version, invocation, trace), not as text
// on the host's stdout, where nothing tells which invocation wrote it.
for (const method of ['log', 'info', 'debug', 'trace', 'warn', 'error'] as const) {
  console[method] = (...args: unknown[]) => sendLog(method, args)
}

// A rejection nobody awaited inside a function must not take the whole isolate down; it is reported to the host,
// which writes it as one structured log line (never as text on stderr).
process.on('unhandledRejection', (reason) => {
  const ids: string[] = []
  for (const state of running.values()) ids.push(state.invocationId)
  post({ type: 'fault', kind: 'unhandled-rejection', error: serializeError(reason), running: ids, last: lastStarted })
})

function makeContext(msg: FetchMessage | EventMessage, state: Running, waits: WaitUntil): ExecutionContext {
  return {
    waitUntil: (promise: Promise<unknown>) => waits.add(promise),
    get signal() {
      return signalOf(state)
    },
    deadline: msg.deadline,
    invocation: { id: msg.invocationId, function: init.function, version: init.version, trigger: msg.trigger },
    principal: msg.principal,
  }
}

/** Settles the invocation's waitUntil work and reports it done, with the rejections serialised. */
async function finish(id: number, waits: WaitUntil, noRetry = false): Promise<void> {
  const errors = await waits.settle()
  post({ type: 'done', id, errors: errors.map(serializeError), noRetry })
}

function startRun(id: number, invocationId: string, deadline: number): Running {
  const state = newRun(invocationId, deadline, init.streamWindow)
  running.set(id, state)
  lastStarted = invocationId
  return state
}

function endRun(id: number, state: Running): void {
  running.delete(id)
  clearTimeout(state.timer)
}

const nextMacrotask = (): Promise<'tick'> => new Promise((resolve) => setImmediate(resolve, 'tick'))

async function runFetch(msg: FetchMessage): Promise<void> {
  const state = startRun(msg.id, msg.invocationId, msg.deadline)
  const waits = new WaitUntil()
  let headSent = false
  try {
    // A lazy Request (light-request.ts); ctx.signal carries aborts, request.signal is never aborted.
    const requestBody = msg.body !== null && msg.method !== 'GET' && msg.method !== 'HEAD' ? msg.body : null
    const request = new LightRequest(msg.method, msg.url, msg.headers, requestBody) as unknown as Request
    const response = await dispatchFetch(mod, init.function, request, env, makeContext(msg, state, waits))
    const simple = LightResponse.takeSimple(response)
    if (simple !== undefined) {
      // Fast path: the whole body was given as a string or bytes; no stream to read.
      const [b, transfer] = simpleBody(simple.body, simple.headers, init.maxBodyBytes, tooLarge)
      const head = {
        type: 'response' as const,
        id: msg.id,
        status: simple.status,
        statusText: simple.statusText,
        headers: simple.headers,
        body: b,
        end: true,
      }
      await settleAndPost(msg.id, waits, (done) => post({ ...head, done }, transfer))
      return
    }
    const head = {
      type: 'response' as const,
      id: msg.id,
      status: response.status,
      statusText: response.statusText,
      headers: toHeaderList(response.headers),
    }
    const body = response.body
    if (body === null) {
      await settleAndPost(msg.id, waits, (done) => post({ ...head, body: null, end: true, done }))
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
        await settleAndPost(msg.id, waits, (done) => post({ ...head, body: b, end: true, done }, transfer))
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
    await finish(msg.id, waits)
  } catch (error) {
    post({ type: 'error', id: msg.id, error: serializeError(error), afterHead: headSent })
    await finish(msg.id, waits)
  } finally {
    endRun(msg.id, state)
  }
}

/** Posts the complete response; folds `done` into it when there is nothing to wait for. */
async function settleAndPost(id: number, waits: WaitUntil, postHead: (done: boolean) => void): Promise<void> {
  if (waits.empty) return postHead(true)
  postHead(false)
  await finish(id, waits)
}

function tooLarge(total: number): Error {
  return new SovraError(
    'ERR_RESPONSE_TOO_LARGE',
    `response body is ${total} bytes, over limits.max_body_bytes (${init.maxBodyBytes}); raise the limit or stream the body (a ReadableStream that produces it over time)`,
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
  const state = startRun(msg.id, msg.invocationId, msg.deadline)
  const waits = new WaitUntil()
  try {
    const input =
      msg.handler === 'scheduled'
        ? { handler: 'scheduled' as const, cron: msg.cron ?? '', scheduledTime: msg.scheduledTime ?? Date.now() }
        : msg.event === undefined
          ? undefined
          : { handler: 'object' as const, event: msg.event }
    const outcome =
      input === undefined
        ? {
            ok: false as const,
            error: new SovraError('ERR_BAD_REQUEST', 'an object invocation arrived without its event'),
            noRetry: false,
          }
        : await dispatchEvent(mod, init.function, input, env, makeContext(msg, state, waits), waits)
    if (!outcome.ok) post({ type: 'error', id: msg.id, error: serializeError(outcome.error), afterHead: false })
    await finish(msg.id, waits, outcome.noRetry)
  } finally {
    endRun(msg.id, state)
  }
}

function onMessage(msg: HostMessage | BatchMessage<HostMessage>): void {
  switch (msg.type) {
    case 'batch':
      for (const m of msg.messages) onMessage(m)
      break
    case 'fetch':
      lastMessage = msg
      if (tracking) void current.run(msg, runFetch, msg)
      else {
        lastUntracked = msg.id
        void runFetch(msg)
      }
      break
    case 'event':
      lastMessage = msg
      if (tracking) void current.run(msg, runEvent, msg)
      else {
        lastUntracked = msg.id
        void runEvent(msg)
      }
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
      else pending.reject(reviveError({ ...msg.error, message: msg.error?.message ?? 'binding call failed' }))
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
  mod = functionModule(loaded.default)
  port.on('message', onMessage)
  post({ type: 'ready', handlers: handlerNames(mod) })
} catch (error) {
  post({ type: 'init-error', error: serializeError(error) })
}
