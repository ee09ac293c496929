import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createPromMetrics } from '../../../../infra/observe/metrics.ts'
import { FsBucket } from '../../../../infra/storage/fs-bucket.ts'
import { loadConfig } from '../../../../runtime/config/load.ts'
import { openStore } from '../../../../infra/deploy/project-state.ts'
import { enableControlPlane } from '../../../../infra/deploy/control-loop.ts'
import { LocalHost } from '../../../../runtime/hosts/local/host.ts'
import type { Db } from '../../../../runtime/core/ports.ts'
import { captureLogger, runCli, tempProject, withFixtures } from '../../../helpers.ts'

// The embedded host serving two versions of a function: deployed with `sovra deploy`, canary at 30%, a pin.
const dir = withFixtures(
  tempProject({
    'wrangler-compat.toml': `
name = "canary"
[[functions]]
name = "plain"
main = "fixtures/plain.js"
routes = ["/plain"]
vars = { GREETING = "bank" }
[functions.isolates]
min = 1
max = 1
concurrency = 32
`,
  }),
)
const cfg = ['--config', join(dir, 'wrangler-compat.toml'), '--state', join(dir, 'state')]
let host: LocalHost
let db: Db
let stop: () => void
const log = captureLogger()
const get = async (id: string, headers: Record<string, string> = {}): Promise<string> =>
  (await fetch(`${host.url}/plain`, { headers: { 'x-request-id': id, ...headers } })).text()

beforeAll(async () => {
  process.env['SOVRA_ACTOR'] = 'alice'
  expect((await runCli(['keys', 'gen', ...cfg])).code).toBe(0)
  expect((await runCli(['deploy', ...cfg])).code).toBe(0)
  const file = join(dir, 'fixtures', 'plain.js')
  writeFileSync(file, readFileSync(file, 'utf8').replace('hello from', 'v2 from'))
  const canary = await runCli(['deploy', '--canary', '30', ...cfg])
  expect(canary.out).toMatch(/canary 30%/)
  // The source on disk is now v2: the host must still serve v1 as stable from the registry.
  const { project } = loadConfig({ configPath: join(dir, 'wrangler-compat.toml'), env: undefined })
  db = await openStore(project, { state: join(dir, 'state') })
  host = await LocalHost.start({ project, log, metrics: createPromMetrics(), port: 0 })
  stop = await enableControlPlane(host, project, db, { state: join(dir, 'state'), log, intervalMs: 60_000 })
}, 90_000)
afterAll(async () => {
  stop?.()
  await host?.close(1000)
  await db?.close()
})

describe('versions on the embedded host', () => {
  it('routes about 30% of request ids to the canary, the same id always to the same version', async () => {
    const answers = await Promise.all(Array.from({ length: 400 }, (_, i) => get(`req-${i}`)))
    const v2 = answers.filter((a) => a.startsWith('v2 from')).length
    expect(answers.every((a) => a === 'hello from bank at /plain' || a === 'v2 from bank at /plain')).toBe(true)
    expect(v2).toBeGreaterThanOrEqual(90)
    expect(v2).toBeLessThanOrEqual(150)
    for (let i = 0; i < 20; i++) expect(await get(`req-${i}`)).toBe(answers[i])
  })

  it('a pinned tenant always gets its version', async () => {
    const state = host.functions.get('plain')?.versions?.state
    await db.query('INSERT INTO sovra_pins (function, attribute, value, version) VALUES ($1, $2, $3, $4)', [
      'plain',
      'tenant',
      'legal',
      state?.stable,
    ])
    await host.functions.get('plain')?.versions?.refresh()
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) => get(`pin-${i}`, { 'x-sovra-tenant': 'legal' })),
    )
    expect(new Set(answers)).toEqual(new Set(['hello from bank at /plain']))
  })

  it('names the serving version in x-sovra-version and the metrics, and lists the routing in /_sovra/functions', async () => {
    const state = host.functions.get('plain')?.versions?.state
    const stable = state?.stable as string
    const canary = state?.canary?.version as string
    expect(stable).toMatch(/^plain@[0-9a-f]{12}-[0-9a-f]{8}$/)
    expect(canary).toMatch(/^plain@[0-9a-f]{12}-[0-9a-f]{8}$/)
    const served = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const res = await fetch(`${host.url}/plain`, { headers: { 'x-request-id': `hdr-${i}` } })
        return [await res.text(), res.headers.get('x-sovra-version')] as const
      }),
    )
    expect(new Map(served)).toEqual(
      new Map([
        ['hello from bank at /plain', stable],
        ['v2 from bank at /plain', canary],
      ]),
    )
    const metrics = await (await fetch(`${host.url}/_sovra/metrics`)).text()
    for (const v of [stable, canary]) {
      expect(metrics).toMatch(
        new RegExp(
          `^sovra_invocations_total\\{function="plain",version="${v}",trigger="http",status="200",outcome="ok"\\} [1-9]`,
          'm',
        ),
      )
      expect(metrics).toContain(
        `sovra_invocation_duration_seconds_count{function="plain",version="${v}",trigger="http",status="200"}`,
      )
    }
    const listed = (await (await fetch(`${host.url}/_sovra/functions`)).json()) as Array<{
      name: string
      versions: unknown
    }>
    expect(listed.find((f) => f.name === 'plain')?.versions).toEqual({
      stable: {
        version: stable,
        sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
        stats: expect.objectContaining({ version: stable }),
      },
      canary: {
        version: canary,
        weight: 30,
        sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
        stats: expect.objectContaining({ version: canary }),
      },
      // The pin the previous test made.
      pins: [
        { attribute: 'tenant', value: 'legal', version: stable, sha256: expect.any(String), stats: expect.any(Object) },
      ],
    })
  })

  it('never routes to a version whose bundle fails verification', async () => {
    const v = host.functions.get('plain')?.versions
    const canaryVersion = v?.state?.canary?.version as string
    const row = (
      await db.query<{ bundle_sha256: string }>('SELECT bundle_sha256 FROM sovra_versions WHERE id = $1', [
        canaryVersion,
      ])
    ).rows[0]!
    await new FsBucket('sovra-artifacts', join(dir, 'state', 'buckets')).put(
      `blobs/sha256/${row.bundle_sha256}`,
      'export default { fetch() { return new Response("pwned") } }',
    )
    // A fresh host (the running one already has the verified canary loaded).
    const { project } = loadConfig({ configPath: join(dir, 'wrangler-compat.toml'), env: undefined })
    const fresh = await LocalHost.start({ project, log, metrics: createPromMetrics(), port: 0 })
    const stopFresh = await enableControlPlane(fresh, project, db, {
      state: join(dir, 'state'),
      log,
      intervalMs: 60_000,
    })
    try {
      const answers = await Promise.all(
        Array.from({ length: 100 }, async (_, i) =>
          (await fetch(`${fresh.url}/plain`, { headers: { 'x-request-id': `t-${i}` } })).text(),
        ),
      )
      expect(answers.some((a) => a.includes('pwned'))).toBe(false)
      expect(new Set(answers)).toEqual(new Set(['hello from bank at /plain']))
      expect(log.lines.find((l) => l.msg === 'version refused: not routed to')?.['err']).toMatch(/tampered/)
    } finally {
      stopFresh()
      await fresh.close(1000)
    }
  })
})
