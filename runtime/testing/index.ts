/**
 * Test helpers for function authors (`import { startTestHost, createExecutionContext } from 'sovra/testing'`),
 * in the spirit of Cloudflare's `cloudflare:test`: unit-test a handler directly (execution context, scheduled
 * controller, object events), or run the real embedded host with isolates in-process, its crons on a test clock
 * and its object-event queue running, and call it over HTTP.
 */
export {
  createExecutionContext,
  waitOnExecutionContext,
  type TestExecutionContext,
  type TestExecutionContextOptions,
} from './execution-context.ts'
export {
  createScheduledController,
  type ScheduledControllerOptions,
  type TestScheduledController,
} from './scheduled-controller.ts'
export { minioRecord, objectEvent, type ObjectEventInit } from './object-event.ts'
export { TestClock } from './test-clock.ts'
export { startTestHost, type TestHost, type TestHostOptions } from './test-host.ts'
export type { CronOutcome, ObjectOutcome, TriggerOutcome } from './trigger-recorder.ts'
