import type { SovraError } from '../core/index.ts'
import { failJob, type Job } from './job.ts'

/** After the deadline, how long a cooperative handler gets to stop before its isolate is terminated. */
export const TERMINATE_GRACE_MS = 200

/**
 * Ends a dispatched job at its deadline: its caller gets the timeout now, and its isolate is told to abort the
 * invocation (ctx.signal). A handler that honours the signal stops by itself; one stuck in a loop cannot be stopped
 * alone, so its isolate is terminated TERMINATE_GRACE_MS later, and every other invocation running in that
 * isolate ends with it: `isolates.concurrency` is the blast radius of a runaway invocation.
 * @param job the job past its deadline
 * @param timeoutError the error to report (built once per use)
 */
export function expireRunning(job: Job, timeoutError: () => SovraError): void {
  failJob(job, timeoutError(), 'timeout')
  const slot = job.slot
  if (slot === undefined || !slot.jobs.has(job.id)) return
  slot.outbox.push({ type: 'cancel', id: job.id, reason: 'deadline' })
  setTimeout(() => {
    if (!job.finished && slot.jobs.has(job.id)) {
      slot.exitReason ??= { outcome: 'timeout', error: timeoutError(), invocationId: job.invocation.id }
      void slot.worker.terminate()
    }
  }, TERMINATE_GRACE_MS).unref()
}
