import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createPromMetrics } from '../../../../infra/observe/metrics.ts'
import { loadConfig } from '../../../../runtime/config/load.ts'
import { LocalHost } from '../../../../runtime/hosts/local/host.ts'
import { watchFunctions, type ReloadEvent } from '../../../../runtime/hosts/local/reload.ts'
import { captureLogger, tempProject, waitFor } from '../../../helpers.ts'

// A handler that answers after `?wait=ms`, so a request can still run in the old isolate while a reload happens.
const source = (word: string): string =>
  `export default { async fetch(request) {
    const wait = Number(new URL(request.url).searchParams.get('wait') ?? 0)
    await new Promise((r) => setTimeout(r, wait))
    return new Response(${JSON.stringify(word)})
  } }\n`

const dir = tempProject({
  'wrangler-compat.toml': '[[functions]]\nname = "r"\nmain = "r.ts"\nroutes = ["/r"]\n',
  'r.ts': source('one'),
})
const log = captureLogger()
const reloads: ReloadEvent[] = []
let host: LocalHost
let stop: () => Promise<void>

beforeAll(async () => {
  const { project } = loadConfig({ configPath: join(dir, 'wrangler-compat.toml'), env: undefined })
  host = await LocalHost.start({ project, log, metrics: createPromMetrics(), port: 0 })
  stop = await watchFunctions(host, project, log, (e) => reloads.push(e))
})
afterAll(async () => {
  await stop?.()
  await host?.close(1000)
})

describe('watchFunctions', () => {
  // Issue 11: the isolates a reload retires were logged as `"isolate replaced", reason: "crash"` (an error line).
  it('retires the old isolates with reason "reload", never "crash", even one that still had a request', async () => {
    expect(await (await fetch(`${host.url}/r`)).text()).toBe('one')
    const inflight = fetch(`${host.url}/r?wait=1500`).then((r) => r.text())
    // The request is running in the old isolate before the save.
    await new Promise((r) => setTimeout(r, 300))
    writeFileSync(join(dir, 'r.ts'), source('two'))
    await waitFor(() => reloads.length > 0, 15_000)
    expect(reloads[0]).toMatchObject({ function: 'r', ok: true })
    expect(await (await fetch(`${host.url}/r`)).text()).toBe('two')
    expect(await inflight).toBe('one')
    await waitFor(() => log.lines.some((l) => l.msg === 'isolate replaced' && l['reason'] === 'reload'), 5000)
    const replaced = log.lines.filter((l) => l.msg === 'isolate replaced')
    expect(replaced.map((l) => l['reason'])).toEqual(['reload'])
    expect(replaced[0]).toMatchObject({ level: 'info', function: 'r' })
    expect(log.lines.filter((l) => l['reason'] === 'crash' || l.level === 'error')).toEqual([])
  })
})

describe('watchFunctions on a function routed across versions', () => {
  it('says the rebuild is not what its requests get, instead of a plain "function reloaded"', async () => {
    const loaded = host.functions.get('r')
    const bundle = loaded?.pool.bundle
    if (bundle === undefined) throw new Error('function r is not loaded')
    // A control plane with one stable version: the bundle serving now.
    await host.functions.enableVersions(
      'r',
      {
        routing: async () => ({ stable: 'r@deployed', pins: [] }),
        bundle: async () => ({ ...bundle, version: 'r@deployed' }),
      },
      log,
    )
    const before = reloads.length
    writeFileSync(join(dir, 'r.ts'), source('three'))
    await waitFor(() => reloads.length > before, 15_000)
    const line = log.lines.filter((l) => l['function'] === 'r' && String(l.msg).startsWith('function reloaded')).at(-1)
    expect(line).toMatchObject({
      level: 'warn',
      stable: 'r@deployed',
      msg: "function reloaded, but r's requests go to its deployed versions (stable r@deployed), not to this build",
    })
    expect(await (await fetch(`${host.url}/r`)).text()).toBe('two')
  })
})
