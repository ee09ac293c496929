import type { CallContext } from '../bindings/define.ts'
import { SovraError } from '../core/errors.ts'
import { serializeError, type CallMessage } from './codec.ts'
import type { BindingHost } from './pool-options.ts'
import type { Slot } from './slot.ts'

/** Who made a call: the context of the invocation a call message names, looked up among its isolate's own. */
export type CallerOf<J> = (slot: Slot<J>, invocation: number) => CallContext

const NOBODY: CallContext = Object.freeze({})

/**
 * Answers a binding call an isolate made (`env.DOCS.put(...)`): runs it on the host's adapters with the context of
 * the invocation that made it, and posts the result, or the error, back to that isolate under the call's id.
 * @param slot the isolate that called
 * @param msg the call
 * @param host the host's binding runner; none means the function has no bindings configured
 * @param fn the function, for the message
 * @param callerOf the context of one of the slot's invocations (only consulted when the call names one)
 */
export async function answerBindingCall<J>(
  slot: Slot<J>,
  msg: CallMessage,
  host: BindingHost | undefined,
  fn: string,
  callerOf: CallerOf<J>,
): Promise<void> {
  try {
    if (host === undefined)
      throw new SovraError('ERR_CONFIG', `function "${fn}" has no bindings configured; ${msg.binding} is unknown`)
    // Only invocations this isolate is running are found: an id from elsewhere, or one that finished, is nobody.
    const call = msg.invocation === undefined ? NOBODY : callerOf(slot, msg.invocation)
    const { value, transfer } = await host(msg.binding, msg.method, msg.args, call)
    slot.outbox.push({ type: 'result', callId: msg.callId, ok: true, value }, transfer)
  } catch (error) {
    slot.outbox.push({ type: 'result', callId: msg.callId, ok: false, error: serializeError(error) })
  }
}
