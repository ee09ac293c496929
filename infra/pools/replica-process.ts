import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

import type { Replica, ReplicaState, ReplicaStatus } from './replica.ts'

const SOVRA_BIN = fileURLToPath(new URL('../../bin/sovra.js', import.meta.url))

/** What a replica's `/healthz` said; undefined when it did not answer. */
interface Health {
  ready: boolean
  status: string | undefined
  operations: string[]
  digest: string | undefined
  error: string | undefined
}

async function readHealth(url: string): Promise<Health | undefined> {
  try {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) })
    const body = (await res.json()) as {
      status?: string
      operations?: string[]
      model?: { sha256?: string }
      error?: string
    }
    return {
      ready: res.status === 200,
      status: body.status,
      operations: body.operations ?? [],
      digest: body.model?.sha256,
      error: body.error,
    }
  } catch {
    return undefined
  }
}

/** How to start a local replica process. */
export interface LocalReplicaOptions {
  id: string
  pool: string
  configFile: string
  env?: string | undefined
  stateDir: string
  /** Each stdout line of the replica (its JSON log); default: dropped. */
  onLog?: (line: string) => void
  /** Called once when the replica leaves `starting` (ready or failed). */
  onSettled?: (replica: LocalReplica) => void
  /** How often `/healthz` is polled while starting. */
  pollMs?: number
}

/**
 * A replica run as a child process (`sovra pool serve --port 0`) of the host: it learns the port from the
 * replica's "listening" log line, sends traffic only after `/healthz` answers 200, and on scale-down drains the
 * router's in-flight requests before SIGTERM (the replica then finishes its own and exits).
 */
export class LocalReplica implements Replica {
  readonly id: string
  url: string | undefined
  state: ReplicaState = 'starting'
  outstanding = 0
  operations: string[] = []
  modelDigest: string | undefined
  status: ReplicaStatus | undefined
  readyAt: number | undefined
  readonly startedAt = Date.now()
  /** Why it failed (its last error log line or exit), when `state` is `failed`. */
  failure: string | undefined
  readonly #child: ChildProcess
  readonly #exited: Promise<void>
  #stopping = false
  #stderr = ''

  /** Spawns the process; see {@link LocalReplicaOptions}. */
  constructor(readonly options: LocalReplicaOptions) {
    this.id = options.id
    const args = [
      SOVRA_BIN,
      'pool',
      'serve',
      '--pool',
      options.pool,
      '--config',
      options.configFile,
      '--port',
      '0',
      '--replica',
      options.id,
      '--state',
      options.stateDir,
    ]
    if (options.env !== undefined) args.push('--env', options.env)
    this.#child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        SOVRA_LOG_LEVEL: process.env['SOVRA_LOG_LEVEL'] ?? 'info',
        SOVRA_PARENT_PID: String(process.pid),
      },
    })
    createInterface({ input: this.#child.stdout as NodeJS.ReadableStream }).on('line', (line) => this.#onLine(line))
    this.#child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.#stderr = (this.#stderr + d).slice(-4000)
    })
    this.#exited = new Promise((resolve) =>
      this.#child.once('exit', (code, signal) => {
        if (!this.#stopping && this.state !== 'failed') {
          const tail = this.#stderr.trim().split('\n').filter(Boolean).slice(-2).join(' | ')
          this.failure ??= `exited with ${signal ?? `code ${code}`}${tail ? `: ${tail}` : ''}`
          this.#settle('failed')
        } else if (this.state !== 'failed') {
          this.state = 'stopped'
        }
        resolve()
      }),
    )
  }

  /** The process id (tests kill it to simulate a crash). */
  get pid(): number | undefined {
    return this.#child.pid
  }

  #onLine(line: string): void {
    this.options.onLog?.(line)
    if (!line.startsWith('{')) return
    let rec: { msg?: string; url?: string; level?: string; err?: string }
    try {
      rec = JSON.parse(line) as typeof rec
    } catch {
      return
    }
    if (rec.msg === 'pool replica listening' && typeof rec.url === 'string') {
      this.url = rec.url
      void this.#pollHealth()
    }
    if (rec.level === 'error' && typeof rec.err === 'string') this.failure = rec.err
  }

  async #pollHealth(): Promise<void> {
    while (this.state === 'starting' && !this.#stopping) {
      const health = await readHealth(this.url as string)
      if (health?.ready === true) {
        this.operations = health.operations
        this.modelDigest = health.digest
        this.readyAt = Date.now()
        this.#settle('ready')
        return
      }
      if (health?.status === 'failed') {
        this.failure = health.error ?? 'model failed to load'
        return // the process exits on its own; the exit handler settles it as failed
      }
      // Not listening yet, or busy loading: poll again.
      await new Promise((r) => setTimeout(r, this.options.pollMs ?? 100))
    }
  }

  #settle(state: ReplicaState): void {
    const wasStarting = this.state === 'starting'
    this.state = state
    if (wasStarting) this.options.onSettled?.(this)
  }

  /**
   * Takes the replica out of rotation, waits for the router's in-flight requests (at most `drainMs`), then stops
   * the process (SIGTERM; SIGKILL after `killAfterMs`).
   * @param drainMs how long to wait for in-flight requests
   * @param killAfterMs how long the process gets to exit after SIGTERM
   */
  async stop(drainMs = 30_000, killAfterMs = 10_000): Promise<void> {
    if (this.state === 'ready' || this.state === 'starting') this.state = 'draining'
    const until = Date.now() + drainMs
    while (this.outstanding > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 25))
    this.#stopping = true
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGTERM')
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), killAfterMs)
      await this.#exited
      clearTimeout(timer)
    }
    if (this.state !== 'failed') this.state = 'stopped'
  }

  /** Resolves when the process has exited. */
  exited(): Promise<void> {
    return this.#exited
  }
}

/** A replica somebody else runs (`endpoints = [...]`): health-polled, never started or stopped here. */
export class RemoteReplica implements Replica {
  state: ReplicaState = 'starting'
  outstanding = 0
  operations: string[] = []
  modelDigest: string | undefined
  status: ReplicaStatus | undefined
  readyAt: number | undefined
  readonly startedAt = Date.now()

  /** @param url the replica's base URL */
  constructor(public url: string) {}

  /** The URL is the id. */
  get id(): string {
    return this.url
  }

  /** Polls `/healthz` once: ready on 200, starting otherwise (a remote replica comes back by itself). */
  async check(): Promise<void> {
    const health = await readHealth(this.url)
    if (health?.ready === true) {
      this.operations = health.operations
      this.modelDigest = health.digest
      if (this.state !== 'ready') this.readyAt = Date.now()
      this.state = 'ready'
      return
    }
    this.state = 'starting'
  }
}
