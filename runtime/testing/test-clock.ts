import { ManualClock } from '../../triggers/cron/clock.ts'

/**
 * The clock a test host's cron scheduler runs by: time moves only when the test moves it. The test host moves it
 * with `advanceTo(to, afterEach)`, waiting for the work each timer starts (a cron run in an isolate, its retries)
 * before firing the next, so what runs, and in which order, does not depend on how busy the machine is.
 */
export class TestClock extends ManualClock {}
