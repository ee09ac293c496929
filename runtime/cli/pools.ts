import { SovraError } from '../core/errors.ts'
import type { Command } from './command.ts'

const USAGE = 'sovra pools [--url URL]'

/** `sovra pools`: replicas, queue depth, p95 against budget and the next surge window of every pool. */
export const poolsCommand: Command = {
  usage: USAGE,
  run() {
    return Promise.reject(new SovraError('ERR_USAGE', 'sovra pools: not wired yet'))
  },
}
