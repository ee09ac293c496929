/**
 * Test helpers for function authors (`import { startTestHost, createExecutionContext } from 'sovra/testing'`),
 * in the spirit of Cloudflare's `cloudflare:test`: unit-test a handler directly, or run the real embedded host
 * with isolates in-process and call it over HTTP.
 */
import { fileURLToPath } from 'node:url'
import { startPools } from '../cli/ai.ts'
import type { ExecutionContext, Invocation, Principal } from '../core/index.ts'
import { loadConfig } from '../config/load.ts'
import { LocalHost } from '../hosts/local/host.ts'
import { SILENT_LOGGER, type HostLogger } from '../hosts/local/observer.ts'
import { createPromMetrics } from '../../infra/observe/metrics.ts'
import { createBucketProvider } from '../cli/storage.ts'

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
export function createExecutionContext(options: { timeoutMs?: number; invocation?: Partial<Invocation>; principal?: Principal } = {}): TestExecutionContext {
  const waits: Promise<unknown>[] = []
  const controller = new AbortController()
  const deadline = Date.now() + (options.timeoutMs ?? 30_000)
  return {
    waitUntil: (p) => void waits.push(Promise.resolve(p)),
    signal: controller.signal,
    deadline,
    invocation: { id: crypto.randomUUID(), function: 'test', version: 'test', trigger: 'http', ...options.invocation },
    principal: options.principal,
    async waitForAll() {
      for (let seen = 0; seen < waits.length; ) {
        const batch = waits.slice(seen)
        seen = waits.length
        await Promise.all(batch)
      }
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
export async function startTestHost(options: { config: string | URL; env?: string; processEnv?: Record<string, string | undefined>; log?: HostLogger; state?: string }): Promise<TestHost> {
  const configPath = options.config instanceof URL ? fileURLToPath(options.config) : options.config
  const processEnv = options.processEnv ?? process.env
  const { project } = loadConfig({ configPath, env: options.env, processEnv })
  const buckets = createBucketProvider(project, { env: processEnv, ...(options.state === undefined ? {} : { state: options.state }) })
  const log = options.log ?? SILENT_LOGGER
  // `[[pools]]` start as in `sovra start` (replica processes, warm before the host listens); their logs are dropped.
  const pools = await startPools(project, { state: options.state, log, onLog: () => undefined })
  let host: LocalHost
  try {
    host = await LocalHost.start({ project, log, metrics: createPromMetrics(), port: 0, buckets, ...(pools === undefined ? {} : { ai: pools.router, pools: pools.manager }) })
  } catch (e) {
    await pools?.close()
    throw e
  }
  return {
    url: host.url,
    host,
    fetch: (path, init) => fetch(path.startsWith('http') ? path : `${host.url}${path}`, init),
    close: async () => {
      await host.close(2000)
      await pools?.close()
    },
  }
}
