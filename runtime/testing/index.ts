/**
 * Test helpers for function authors (`import { startTestHost, createExecutionContext } from 'sovra/testing'`),
 * in the spirit of Cloudflare's `cloudflare:test`: unit-test a handler directly, or run the real embedded host
 * with isolates in-process and call it over HTTP.
 */
import { fileURLToPath } from 'node:url'
import { assemble } from '../../infra/deploy/assemble.ts'
import type { ExecutionContext, Invocation, Principal } from '../core/index.ts'
import { WaitUntil } from '../core/dispatch.ts'
import { loadConfig } from '../config/load.ts'
import { LocalHost } from '../hosts/local/host.ts'
import { SILENT_LOGGER, type HostLogger } from '../hosts/local/observer.ts'
import { createPromMetrics } from '../../infra/observe/metrics.ts'

/** An ExecutionContext for calling a handler directly in a test, with a way to await its waitUntil work. */
export interface TestExecutionContext extends ExecutionContext {
  /** Resolves when every waitUntil promise has settled; rejects with the first rejection. */
  waitForAll(): Promise<void>
}

/**
 * Creates an ExecutionContext for unit tests.
 * @param options deadline (default 30 s from now), invocation fields, principal
 * @example
 * const ctx = createExecutionContext()
 * const res = await worker.fetch(new Request('http://local/hello'), { GREETING: 'hi' }, ctx)
 * await ctx.waitForAll()
 */
export function createExecutionContext(
  options: { timeoutMs?: number; invocation?: Partial<Invocation>; principal?: Principal } = {},
): TestExecutionContext {
  const waits = new WaitUntil()
  const controller = new AbortController()
  const deadline = Date.now() + (options.timeoutMs ?? 30_000)
  return {
    waitUntil: (p) => waits.add(p),
    signal: controller.signal,
    deadline,
    invocation: { id: crypto.randomUUID(), function: 'test', version: 'test', trigger: 'http', ...options.invocation },
    principal: options.principal,
    async waitForAll() {
      // The hosts' own settling (runtime/core/dispatch.ts); a test sees the first rejection as a failure.
      const errors = await waits.settle()
      if (errors.length > 0) throw errors[0]
    },
  }
}

/** A running embedded host for tests. */
export interface TestHost {
  url: string
  host: LocalHost
  /** Fetches a path (or absolute URL) from the host. */
  fetch(path: string, init?: RequestInit): Promise<Response>
  close(): Promise<void>
}

/**
 * Starts the real embedded host (bundles, isolates, HTTP on 127.0.0.1 with a free port) for a project.
 * @param options the config file (path or file URL), environment, process env (secrets, SOVRA_S3_*), logger, state folder
 * @example
 * const host = await startTestHost({ config: new URL('../wrangler-compat.toml', import.meta.url) })
 * const res = await host.fetch('/hello')
 * await host.close()
 */
export async function startTestHost(options: {
  config: string | URL
  env?: string
  processEnv?: Record<string, string | undefined>
  log?: HostLogger
  state?: string
}): Promise<TestHost> {
  const configPath = options.config instanceof URL ? fileURLToPath(options.config) : options.config
  const processEnv = options.processEnv ?? process.env
  const { project } = loadConfig({ configPath, env: options.env, processEnv })
  const log = options.log ?? SILENT_LOGGER
  // Wired as `sovra start` wires them (infra/deploy/assemble.ts): `[[pools]]` start as replica processes, warm before
  // the host listens, their logs dropped; no SQL store (no crons or events are persisted in tests).
  const parts = await assemble(project, {
    env: processEnv,
    state: options.state,
    log,
    store: false,
    onPoolLog: () => undefined,
  })
  let host: LocalHost
  try {
    host = await LocalHost.start({ project, log, metrics: createPromMetrics(), port: 0, ...parts.hostOptions() })
  } catch (e) {
    await parts.close()
    throw e
  }
  return {
    url: host.url,
    host,
    fetch: (path, init) => fetch(path.startsWith('http') ? path : `${host.url}${path}`, init),
    close: async () => {
      await host.close(2000)
      await parts.close()
    },
  }
}
