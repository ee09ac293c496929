import { SovraError } from '../core/errors.ts'
import type { LocalHost } from '../hosts/local/host.ts'
import type { TriggerOutcome, TriggerRecorder } from './trigger-recorder.ts'

const POLL_MS = 10
// Quiet polls in a row before the host counts as idle: a finished attempt hands over to the next one (the
// dispatcher's wake, a handler's write staging its event) within a tick or two.
const QUIET_POLLS = 3

/**
 * Waits until a test host is idle: no invocation in flight or queued, no cron attempt running, no object event
 * staged, pending or running. Fails after `timeoutMs` with what is still going.
 * @param host the embedded host
 * @param recorder its trigger recorder (cron attempts in flight, outcomes for the message)
 * @param timeoutMs how long to wait
 */
export async function waitForIdle(host: LocalHost, recorder: TriggerRecorder, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs
  for (let quiet = 0; ;) {
    // Retries of object events are due on real time; waking the dispatcher claims them without waiting for its
    // poll interval.
    host.events?.dispatcher.wake()
    quiet = (await busy(host, recorder, false)).length === 0 ? quiet + 1 : 0
    if (quiet === QUIET_POLLS) return
    if (Date.now() >= end) {
      const going = (await busy(host, recorder, true)).join('; ') || 'work kept arriving'
      const last = recorder.outcomes.slice(-3).map(brief)
      throw new SovraError(
        'ERR_TIMEOUT',
        `the test host did not settle within ${timeoutMs} ms: ${going}; pass a larger timeoutMs, or see the last outcomes: ${JSON.stringify(last)}`,
      )
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

/** What keeps the host busy, in words (empty when idle); with `detail`, the first events of each status. */
async function busy(host: LocalHost, recorder: TriggerRecorder, detail: boolean): Promise<string[]> {
  const found: string[] = []
  const invocations = host.functions.stats().reduce((n, s) => n + s.inflight + s.queued, 0)
  if (invocations > 0) found.push(`${invocations} invocation(s) in flight`)
  for (const a of recorder.cronsRunning())
    found.push(`cron ${a.function} ${JSON.stringify(a.cron)} attempt ${a.attempt} running`)
  if (host.events === undefined) return found
  const counts = await host.events.queue.counts()
  for (const status of ['staged', 'pending', 'running'] as const) {
    if (counts[status] === 0) continue
    let line = `${counts[status]} object event(s) ${status}`
    if (detail) {
      const items = await host.events.queue.list({ status, limit: 5 })
      line += ` (${items.map((i) => `${i.function} <- ${i.event.bucket}/${i.event.key} attempt ${i.attempts}`).join(', ')})`
    }
    found.push(line)
  }
  return found
}

/** An outcome in a few words, for a timeout message. */
function brief(o: TriggerOutcome): string {
  const what = o.trigger === 'cron' ? `cron ${o.cron}` : `${o.event.type} ${o.event.bucket}/${o.event.key}`
  return `${o.function} ${what} attempt ${o.attempt}: ${o.ok ? 'ok' : (o.error?.split('\n')[0] ?? 'failed')}`
}
