import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { onShutdownSignals, type ShutdownSignal, type SignalSource } from '../../../runtime/cli/signals.ts'
import { captureLogger } from '../../helpers.ts'

function setup() {
  const emitter = new EventEmitter()
  const source = emitter as unknown as SignalSource
  const exits: number[] = []
  const log = captureLogger()
  const signals = onShutdownSignals(log, { source, exit: (code) => void exits.push(code) })
  const send = (signal: ShutdownSignal) => emitter.emit(signal)
  return { emitter, signals, exits, log, send }
}

describe('onShutdownSignals', () => {
  it('drains on the first signal, logs a second SIGTERM and keeps draining, forces the exit on a third', async () => {
    const { signals, exits, log, send } = setup()
    send('SIGTERM')
    expect(await signals.requested).toBe('SIGTERM')
    send('SIGTERM')
    expect(exits).toEqual([])
    send('SIGTERM')
    expect(exits).toEqual([143])
    expect(log.lines.map((l) => [l.level, l.msg.split(':')[0]])).toEqual([
      ['info', 'shutdown requested'],
      ['warn', 'shutdown already in progress'],
      ['error', 'shutdown forced'],
    ])
  })

  it('forces the exit with 130 on a second SIGINT (Ctrl-C twice), not on SIGTERM then SIGINT', async () => {
    const a = setup()
    a.send('SIGINT')
    expect(await a.signals.requested).toBe('SIGINT')
    a.send('SIGINT')
    expect(a.exits).toEqual([130])

    const b = setup()
    b.send('SIGTERM')
    b.send('SIGINT')
    expect(b.exits).toEqual([])
  })

  it('removes its handlers when disposed', () => {
    const { emitter, signals } = setup()
    expect(emitter.listenerCount('SIGTERM')).toBe(1)
    signals.dispose()
    expect(emitter.listenerCount('SIGTERM') + emitter.listenerCount('SIGINT')).toBe(0)
  })
})
