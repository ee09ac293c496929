import type { ExecutionContext } from './context.ts'

/** The controller a `scheduled` handler receives (Cloudflare's ScheduledController, same fields). */
export interface ScheduledController {
  /** The cron expression that fired. */
  readonly cron: string
  /** When the run was due, epoch ms (not when it started). */
  readonly scheduledTime: number
  /** Marks this run as not to be retried if it fails. */
  noRetry(): void
}

/** One normalised object-storage event (fs bucket writes, MinIO webhooks, S3 notifications). */
export interface ObjectEvent {
  readonly type: 'created' | 'removed'
  readonly bucket: string
  /** The object key, decoded. */
  readonly key: string
  readonly size: number | undefined
  readonly etag: string | undefined
  readonly versionId: string | undefined
  /** Orders events on one key (hex string from S3/MinIO, or a local counter). */
  readonly sequencer: string | undefined
  readonly contentType: string | undefined
  readonly metadata: Readonly<Record<string, string>>
  /** The event name as the store sent it, e.g. `s3:ObjectCreated:Put`. */
  readonly eventName: string
  /** ISO 8601 time of the event. */
  readonly time: string
  /** Where it came from: `fs`, `minio`, `s3`. */
  readonly source: string
}

/** Handles HTTP requests routed to the function. */
export type FetchHandler<TEnv = unknown> = (
  request: Request,
  env: TEnv,
  ctx: ExecutionContext,
) => Response | Promise<Response>

/** Handles a cron firing. */
export type ScheduledHandler<TEnv = unknown> = (
  controller: ScheduledController,
  env: TEnv,
  ctx: ExecutionContext,
) => void | Promise<void>

/** Handles one object-storage event. */
export type ObjectHandler<TEnv = unknown> = (
  event: ObjectEvent,
  env: TEnv,
  ctx: ExecutionContext,
) => void | Promise<void>

/** A function module's default export: any subset of the handlers. */
export interface FunctionModule<TEnv = unknown> {
  fetch?: FetchHandler<TEnv>
  scheduled?: ScheduledHandler<TEnv>
  object?: ObjectHandler<TEnv>
}

/** The handler names a module may export. */
export const HANDLER_NAMES = ['fetch', 'scheduled', 'object'] as const
