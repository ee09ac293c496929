import { SovraError } from '../core/errors.ts'
import { serializeError, type CallMessage } from './codec.ts'
import type { BindingHost } from './pool-options.ts'
import type { Slot } from './slot.ts'

/**
 * Answers a binding call an isolate made (`env.DOCS.put(...)`): runs it on the host's adapters and posts the
 * result, or the error, back to that isolate under the call's id.
 * @param slot the isolate that called
 * @param msg the call
 * @param host the host's binding runner; none means the function has no bindings configured
 * @param fn the function, for the message
 */
export async function answerBindingCall(slot: Slot, msg: CallMessage, host: BindingHost | undefined, fn: string): Promise<void> {
  try {
    if (host === undefined) throw new SovraError('ERR_CONFIG', `function "${fn}" has no bindings configured; ${msg.binding} is unknown`)
    const { value, transfer } = await host(msg.binding, msg.method, msg.args)
    slot.outbox.push({ type: 'result', callId: msg.callId, ok: true, value }, transfer)
  } catch (error) {
    slot.outbox.push({ type: 'result', callId: msg.callId, ok: false, error: serializeError(error) })
  }
}
