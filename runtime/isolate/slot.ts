import { Worker } from 'node:worker_threads'
import { SovraError } from '../core/errors.ts'
import type { Limits } from '../config/schema.ts'
import type { FunctionBundle } from './bundle.ts'
import {
  Outbox,
  serializeError,
  type BatchMessage,
  type CallMessage,
  type EnvSpec,
  type FaultMessage,
  type HostMessage,
  type LogMessage,
  type SerializedError,
  type WorkerInit,
  type WorkerMessage,
} from './codec.ts'
import type { SpareIsolates } from './spares.ts'
import { isolateExecArgv, workerScriptPath } from './worker-script.ts'

/** Chunks a streamed body may have in flight before the host has handed them on (backpressure window). */
export const STREAM_WINDOW = 16
/** How long an idle isolate gets to stop by itself at close before it is terminated. */
export const STOP_GRACE_MS = 500

/** Why an isolate went away; the invocations it had end with this outcome. */
export type SlotExit = 'timeout' | 'oom' | 'crash' | 'unavailable'

/** Messages from an isolate that belong to one invocation (everything but lifecycle and binding calls). */
export type SlotMessage = Exclude<WorkerMessage, { type: 'ready' | 'init-error' | 'call' | 'fault' | 'log' }>

/** Why an isolate is going away: the outcome its invocations end with, and what the log line says about it. */
export interface SlotExitReason {
  outcome: SlotExit
  /** What its invocations' callers get. */
  error: SovraError
  /** What actually happened (an uncaught exception with its stack), for the log; never for callers. */
  cause?: SerializedError
  /** The invocation that caused it, when one did (the one past its deadline). */
  invocationId?: string
}

/**
 * One isolate: a worker thread running one bundle, and the invocations (`J`, the pool's jobs) it is running.
 * Generic so that this module knows nothing of jobs (a job only records which slot runs it).
 */
export interface Slot<J = unknown> {
  worker: Worker
  outbox: Outbox<HostMessage>
  /** The pool generation (bundle) it belongs to; older generations retire after a reload. */
  gen: number
  bundle: FunctionBundle
  ready: boolean
  retiring: boolean
  jobs: Map<number, J>
  spawnedAt: number
  /** The invocation dispatched to it last (what a crash with nothing running most likely comes from). */
  lastInvocation: string | undefined
  /** Why it is going away, set before it exits; the jobs it had end with this. */
  exitReason: SlotExitReason | undefined
  whenReady: Promise<void>
}

/** What {@link startSlot} needs: the function, its bundle and env, and the pool's callbacks. */
export interface SlotOptions<J> {
  name: string
  bundle: FunctionBundle
  gen: number
  env: EnvSpec
  limits: Limits
  spares: SpareIsolates | undefined
  onReady(slot: Slot<J>): void
  /** The bundle failed to load: what callers get, and what the module threw (with its stack, for the log). */
  onInitError(slot: Slot<J>, error: SovraError, cause: SerializedError): void
  onMessage(slot: Slot<J>, msg: SlotMessage): void
  /** A function called a binding; the pool answers with a result message. */
  onCall(slot: Slot<J>, msg: CallMessage): void
  /** Something failed outside any invocation (an unhandled rejection); the isolate carries on. */
  onFault(slot: Slot<J>, msg: FaultMessage): void
  /** The function wrote a console line. */
  onLog(slot: Slot<J>, msg: LogMessage): void
  onExit(slot: Slot<J>, code: number): void
}

/**
 * Starts an isolate for a bundle: takes a spare thread when one is ready, else starts one, with the memory limit,
 * no host environment and no host flags. Its `whenReady` resolves when the bundle has loaded and rejects when it
 * failed to load or the thread died first.
 * @param options the function, bundle, env and callbacks
 */
export function startSlot<J>(options: SlotOptions<J>): Slot<J> {
  const { name, bundle, limits } = options
  const init: WorkerInit = {
    bundlePath: bundle.path,
    function: name,
    version: bundle.version,
    env: options.env,
    streamWindow: STREAM_WINDOW,
    maxBodyBytes: limits.max_body_bytes,
  }
  const spare = options.spares?.take(limits.memory_mb)
  if (spare !== undefined) {
    spare.ref()
    spare.postMessage({ type: 'init', init })
  }
  const worker =
    spare ??
    new Worker(workerScriptPath(), {
      workerData: init,
      // The function sees no host environment variables: secrets reach it only through env.
      env: {},
      execArgv: isolateExecArgv(),
      resourceLimits: { maxOldGenerationSizeMb: limits.memory_mb },
      name: `sovra:${name}`,
    })
  let readyResolve: () => void = () => undefined
  let readyReject: (e: Error) => void = () => undefined
  const whenReady = new Promise<void>((resolve, reject) => {
    readyResolve = resolve
    readyReject = reject
  })
  whenReady.catch(() => undefined)
  const slot: Slot<J> = {
    worker,
    outbox: new Outbox<HostMessage>((m, t) => worker.postMessage(m, t)),
    gen: options.gen,
    bundle,
    ready: false,
    retiring: false,
    jobs: new Map(),
    spawnedAt: Date.now(),
    lastInvocation: undefined,
    exitReason: undefined,
    whenReady,
  }
  const onMessage = (msg: WorkerMessage | BatchMessage<WorkerMessage>): void => {
    if (msg.type === 'batch') {
      for (const m of msg.messages) onMessage(m)
    } else if (msg.type === 'ready') {
      slot.ready = true
      readyResolve()
      options.onReady(slot)
    } else if (msg.type === 'init-error') {
      const error = new SovraError(
        'ERR_FUNCTION_LOAD',
        `function "${name}" failed to load (bundle ${bundle.version}): ${msg.error.message}`,
      )
      slot.exitReason = { outcome: 'unavailable', error }
      options.onInitError(slot, error, msg.error)
      readyReject(error)
      void worker.terminate()
    } else if (msg.type === 'call') {
      options.onCall(slot, msg)
    } else if (msg.type === 'fault') {
      options.onFault(slot, msg)
    } else if (msg.type === 'log') {
      options.onLog(slot, msg)
    } else {
      options.onMessage(slot, msg)
    }
  }
  worker.on('message', onMessage)
  worker.on('error', (error: Error & { code?: string }) => {
    slot.exitReason ??=
      error.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? {
            outcome: 'oom',
            error: new SovraError(
              'ERR_ISOLATE_LOST',
              `function "${name}" ran out of memory (limits.memory_mb = ${limits.memory_mb}); its isolate was replaced`,
            ),
          }
        : {
            outcome: 'crash',
            error: new SovraError(
              'ERR_ISOLATE_LOST',
              `function "${name}"'s isolate crashed (${error.message}); it was replaced`,
            ),
            // An exception nobody caught (a timer that threw after its response): the log line carries it whole.
            cause: serializeError(error),
          }
  })
  worker.on('exit', (code) => {
    readyReject(
      slot.exitReason?.error ??
        new SovraError('ERR_ISOLATE_LOST', `function "${name}"'s isolate exited (code ${code}) before it was ready`),
    )
    options.onExit(slot, code)
  })
  return slot
}

/**
 * Stops an isolate at close: one with work left is terminated; an idle one is asked to stop, so it ends like any
 * thread (profilers and exit hooks run), and is terminated if it has not within {@link STOP_GRACE_MS}.
 * @param slot the isolate
 */
export async function stopSlot(slot: Slot): Promise<void> {
  if (slot.jobs.size > 0) {
    await slot.worker.terminate()
    return
  }
  const exited = new Promise<void>((resolve) => slot.worker.once('exit', () => resolve()))
  slot.outbox.push({ type: 'stop' })
  slot.outbox.flush()
  const timer = setTimeout(() => void slot.worker.terminate(), STOP_GRACE_MS)
  await exited
  clearTimeout(timer)
}
