/**
 * The state of one running invocation inside an isolate: its deadline and lazily created abort signal, its stream
 * credit (flow control) and the reader of a streamed body. Part of the isolate program (worker-main.ts).
 */

/** One running invocation. */
export interface Running {
  /** The invocation's id, for reports of what it left behind (an unhandled rejection). */
  invocationId: string
  deadline: number
  /** Created the first time the function reads ctx.signal: AbortSignals are costly on Node 20 and most never are. */
  controller: AbortController | undefined
  timer: NodeJS.Timeout | undefined
  /** Set once the invocation is cancelled or past its deadline. */
  aborted: { reason: unknown } | undefined
  /** Stream chunks it may still send before the host acknowledges some. */
  credit: number
  /** Wakes a stream waiting for credit (or for the abort). */
  wake: (() => void) | undefined
  reader: ReadableStreamDefaultReader<Uint8Array> | undefined
}

/**
 * A fresh invocation state.
 * @param invocationId the invocation's id
 * @param deadline epoch ms
 * @param credit the stream window
 */
export function newRun(invocationId: string, deadline: number, credit: number): Running {
  return {
    invocationId,
    deadline,
    controller: undefined,
    timer: undefined,
    aborted: undefined,
    credit,
    wake: undefined,
    reader: undefined,
  }
}

/**
 * The invocation's `ctx.signal`, created on first read: cooperative code sees the deadline through it; code that
 * never yields is terminated by the host.
 * @param state the invocation
 */
export function signalOf(state: Running): AbortSignal {
  if (state.controller === undefined) {
    state.controller = new AbortController()
    if (state.aborted !== undefined) {
      state.controller.abort(state.aborted.reason)
    } else {
      state.timer = setTimeout(
        () => abortRun(state, new DOMException('The invocation deadline passed', 'TimeoutError')),
        Math.max(0, state.deadline - Date.now()),
      )
      state.timer.unref()
    }
  }
  return state.controller.signal
}

/**
 * Aborts an invocation once (cancelled by the host or past its deadline): its signal, and a stream waiting for credit.
 * @param state the invocation
 * @param reason what ctx.signal reports
 */
export function abortRun(state: Running, reason: unknown): void {
  if (state.aborted !== undefined) return
  state.aborted = { reason }
  clearTimeout(state.timer)
  state.controller?.abort(reason)
  const wake = state.wake
  state.wake = undefined
  wake?.()
}
