import { Worker } from 'node:worker_threads'
import { isolateExecArgv, workerScriptPath } from './worker-script.ts'

/**
 * Pre-started isolate threads that have not loaded a function yet. Starting a Node worker thread costs ~45-55 ms
 * on a 2-core machine before any function code runs (bench/README figures); taking a spare and sending it the
 * bundle costs a few ms. Spares are kept per memory limit, because `resourceLimits` is fixed when a thread starts.
 * A spare holds no function code and no secrets until it is taken.
 *
 * @example
 * const spares = new SpareIsolates()
 * const pool = new IsolatePool({ ...options, spares })
 */
export class SpareIsolates {
  readonly #byMemory = new Map<number, Worker[]>()
  readonly #perLimit: number
  #closed = false

  /** @param perLimit spares kept ready per memory limit */
  constructor(perLimit = 1) {
    this.#perLimit = perLimit
  }

  /**
   * Takes a started thread with this memory limit, or undefined when none is ready; either way a replacement
   * starts in the background so the next caller finds one.
   * @param memoryMb the isolate's memory limit
   */
  take(memoryMb: number): Worker | undefined {
    const list = this.#byMemory.get(memoryMb) ?? []
    this.#byMemory.set(memoryMb, list)
    const worker = list.shift()
    if (worker !== undefined) worker.removeAllListeners()
    setImmediate(() => this.#fill(memoryMb))
    return worker
  }

  /**
   * How many spares are waiting for this memory limit.
   * @param memoryMb the memory limit
   */
  count(memoryMb: number): number {
    return this.#byMemory.get(memoryMb)?.length ?? 0
  }

  /** Stops every spare. */
  async close(): Promise<void> {
    this.#closed = true
    const all = [...this.#byMemory.values()].flat()
    this.#byMemory.clear()
    await Promise.all(all.map((w) => w.terminate()))
  }

  #fill(memoryMb: number): void {
    const list = this.#byMemory.get(memoryMb)
    if (this.#closed || list === undefined) return
    while (list.length < this.#perLimit) {
      const worker = new Worker(workerScriptPath(), {
        workerData: null,
        env: {},
        execArgv: isolateExecArgv(),
        resourceLimits: { maxOldGenerationSizeMb: memoryMb },
        name: 'sovra:spare',
      })
      // An idle spare that dies is just forgotten; it never had work.
      const forget = (): void => {
        const i = list.indexOf(worker)
        if (i >= 0) list.splice(i, 1)
      }
      worker.once('error', forget)
      worker.once('exit', forget)
      // A spare must not keep the process alive on its own.
      worker.unref()
      list.push(worker)
    }
  }
}
