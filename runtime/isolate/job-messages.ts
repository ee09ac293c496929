import type { SovraError } from '../core/index.ts'
import { headerPairs, type HeaderList } from './codec.ts'
import { failJob, toCallerError, type Job, type Outcome } from './job.ts'
import type { SlotMessage } from './slot.ts'

/**
 * The response headers as a plain record when that loses nothing (no Set-Cookie, whose values must stay apart):
 * Node's HTTP server writes a record as it is, while a list goes through undici's Headers first (measured in the
 * host's CPU profile). The isolate's Headers already joined other repeated names.
 * @param list the headers from the isolate
 * @param invocationId added as `x-sovra-invocation-id`
 * @param version added as `x-sovra-version`: the version that served it (the bundle's version; under the control
 * plane the version id)
 */
export function headersInit(list: HeaderList, invocationId: string, version: string): HeadersInit {
  const record: Record<string, string> = {}
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = list[i] as string
    if (name === 'set-cookie')
      return [...headerPairs(list), ['x-sovra-invocation-id', invocationId], ['x-sovra-version', version]]
    record[name] = list[i + 1] as string
  }
  record['x-sovra-invocation-id'] = invocationId
  record['x-sovra-version'] = version
  return record
}

/** Worker messages that belong to one job. */
export type JobMessage = SlotMessage

/** What applying a worker message may need from the pool (one object per pool, not per message). */
export interface JobHooks {
  /** Tells the job's isolate that `n` more stream chunks were consumed. */
  ack(job: Job, n: number): void
  cancel(job: Job, reason: string): void
  /** The invocation is complete. */
  finish(job: Job): void
  timeoutError(): SovraError
}

/**
 * Applies one message from the isolate to its job: the response head (with the whole body, or a stream fed by
 * later chunks under flow control), chunks, the end, an error, and done (the invocation's end).
 * @param job the job the message is for
 * @param msg the message
 * @param hooks what the pool provides
 */
export function applyWorkerMessage(job: Job, msg: JobMessage, hooks: JobHooks): void {
  switch (msg.type) {
    case 'response': {
      job.status = msg.status
      let body: BodyInit | null = msg.body as string | Uint8Array<ArrayBuffer> | null
      if (!msg.end) {
        body = new ReadableStream<Uint8Array>(
          {
            start: (controller) => {
              job.stream = controller
            },
            // With a high-water mark of 1, pull runs only when the queue is empty: everything sent was consumed.
            pull: () => {
              if (job.unacked > 0 && !job.finished) {
                hooks.ack(job, job.unacked)
                job.unacked = 0
              }
            },
            cancel: () => {
              job.stream = undefined
              hooks.cancel(job, 'the client went away')
            },
          },
          { highWaterMark: 1 },
        )
      }
      const settle = job.settleHead
      job.settleHead = undefined
      settle?.(
        new Response(body, {
          status: msg.status,
          statusText: msg.statusText,
          headers: headersInit(msg.headers, job.invocation.id, job.invocation.version),
        }),
      )
      if (msg.done) hooks.finish(job)
      break
    }
    case 'chunk':
      // After a cancel the isolate may still have chunks on the way: they are dropped.
      if (job.stream === undefined) break
      job.unacked++
      job.stream.enqueue(msg.chunk)
      break
    case 'end':
      job.stream?.close()
      job.stream = undefined
      if (msg.done) hooks.finish(job)
      break
    case 'error': {
      const timedOut = Date.now() >= job.deadline
      const error = timedOut ? hooks.timeoutError() : toCallerError(msg.error)
      const outcome: Outcome = timedOut ? 'timeout' : 'error'
      if (job.settleEvent !== undefined) job.eventError = { error, outcome }
      else failJob(job, error, outcome)
      job.outcome = outcome
      job.error = msg.error
      break
    }
    case 'done':
      job.waitUntilErrors = msg.errors
      if (job.settleEvent !== undefined) {
        const settle = job.settleEvent
        job.settleEvent = undefined
        const failed = job.eventError
        job.status = failed === undefined ? 200 : failed.error.status
        settle(
          failed === undefined
            ? { ok: true, status: 200, outcome: 'ok', error: undefined, detail: undefined, noRetry: msg.noRetry }
            : {
                ok: false,
                status: failed.error.status,
                outcome: failed.outcome,
                error: failed.error,
                detail: job.error?.message ?? failed.error.message,
                noRetry: msg.noRetry,
              },
        )
      }
      hooks.finish(job)
      break
  }
}
