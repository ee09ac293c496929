/**
 * sovra's function contract: what a function imports (`import { defineFunction } from 'sovra'`).
 * Web APIs only: this folder never imports node:* or infra.
 */
export { defineFunction } from './define-function.ts'
export type {
  FunctionModule,
  FetchHandler,
  ScheduledHandler,
  ObjectHandler,
  ScheduledController,
  ObjectEvent,
} from './handlers.ts'
export { HANDLER_NAMES } from './handlers.ts'
export type { ExecutionContext, Invocation, Principal, TriggerKind } from './context.ts'
export { SovraError, isSovraError, errorToBody, errorToResponse, reviveError, ERROR_CODES } from './errors.ts'
export { parseJson } from './parse-json.ts'
export type { BodyIssue, StandardSchema } from './parse-json.ts'
export type { ErrorCode, ErrorBody, SovraErrorOptions } from './errors.ts'
export { TierOrder, DEFAULT_TIERS } from './tiers.ts'
export type { Tier } from './tiers.ts'
export type * from './ports.ts'
export type { Logger, Metrics } from './observe.ts'
export { objectBody, objectMeta } from './object-body.ts'
