import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { Project } from '../../../runtime/config/resolve.ts'
import type { FunctionConfig } from '../../../runtime/config/schema.ts'
import type { ExecutorCall, Executor } from '../../../runtime/hosts/app/executor.ts'
import { openWhiskExecutor } from '../../../runtime/hosts/gateway/executor.ts'
import { isolateExecutor } from '../../../runtime/hosts/local/executor.ts'
import type { FunctionSet } from '../../../runtime/hosts/local/functions.ts'
import { SILENT_LOGGER } from '../../../runtime/hosts/local/observer.ts'
import { VersionedFunction } from '../../../runtime/hosts/local/versions.ts'
import type { FunctionBundle } from '../../../runtime/isolate/bundle.ts'
import type { IsolatePool } from '../../../runtime/isolate/pool.ts'
import { bucketOf, selectVersion, type RoutingState } from '../../../triggers/http/version-select.ts'

const state: RoutingState = {
  stable: 'v1',
  canary: { version: 'v2', weight: 10 },
  pins: [{ attribute: 'tenant', value: 'legal', version: 'v1' }],
}

/**
 * Request id -> bucket, computed once from the FNV-1a + avalanche of version-select.ts and written down:
 * a caller's bucket must not move between processes, restarts, hosts or releases, or a canary stops being sticky
 * (a retry with the same x-request-id would switch versions mid-rollout). Changing bucketOf on purpose means
 * changing these numbers on purpose.
 */
const BUCKETS: ReadonlyArray<readonly [string, number]> = [
  ['', 9809],
  ['a', 4775],
  ['abc', 5249],
  ['req-0', 7400],
  ['req-6', 1750],
  ['req-9', 229],
  ['req-25', 2964],
  ['req-30', 3032],
  ['req-36', 8],
  ['0f8fad5b-d9cb-469f-a165-70867728950e', 109],
  ['x-request-id: 稟議', 397],
  ['é', 7622],
  ['🙂', 8176],
  ['a'.repeat(1000), 2352],
]

/** The version each request id gets with a 30% canary (v2) over stable v1: buckets 0..2999 take the canary. */
const AT_30: ReadonlyArray<readonly [string, 'v1' | 'v2']> = [
  ['req-0', 'v1'],
  ['req-1', 'v1'],
  ['req-6', 'v2'],
  ['req-8', 'v2'],
  ['req-9', 'v2'],
  ['req-10', 'v1'],
  ['req-25', 'v2'],
  ['req-30', 'v1'],
  ['req-36', 'v2'],
  ['0f8fad5b-d9cb-469f-a165-70867728950e', 'v2'],
]
const ROUTING_30: RoutingState = { stable: 'v1', canary: { version: 'v2', weight: 30 }, pins: [] }

describe('selectVersion', () => {
  it('sends 10% +- 2% of 10,000 request ids to a 10% canary', () => {
    let canary = 0
    for (let i = 0; i < 10_000; i++) if (selectVersion(state, { requestId: `req-${i}` }).version === 'v2') canary++
    expect(canary).toBeGreaterThanOrEqual(800)
    expect(canary).toBeLessThanOrEqual(1200)
  })

  it('puts each request id in the same bucket in every process: fixed vectors', () => {
    expect(BUCKETS.map(([id]) => [id, bucketOf(id)])).toEqual(BUCKETS)
    expect(AT_30.map(([id]) => [id, selectVersion(ROUTING_30, { requestId: id }).version])).toEqual(AT_30)
    // The edges of the split: bucket 8 is canary from weight 1 on, 2964 at 30 but not 29, 3032 not at 30.
    expect(selectVersion({ ...ROUTING_30, canary: { version: 'v2', weight: 1 } }, { requestId: 'req-36' })).toEqual({
      version: 'v2',
      reason: 'canary',
    })
    expect(selectVersion({ ...ROUTING_30, canary: { version: 'v2', weight: 29 } }, { requestId: 'req-25' })).toEqual({
      version: 'v1',
      reason: 'stable',
    })
  })

  it('pins override the canary; triggers without a request id get stable', () => {
    for (let i = 0; i < 1000; i++)
      expect(selectVersion(state, { requestId: `req-${i}`, attributes: { tenant: 'legal' } })).toEqual({
        version: 'v1',
        reason: 'pin',
      })
    expect(
      selectVersion(
        { ...state, pins: [{ attribute: 'tenant', value: 'audit', version: 'v2' }] },
        { attributes: { tenant: 'audit' } },
      ),
    ).toEqual({ version: 'v2', reason: 'pin' })
    expect(selectVersion(state, {})).toEqual({ version: 'v1', reason: 'stable' })
  })

  it('weight 0 sends nothing to the canary and weight 100 everything', () => {
    const ids = Array.from({ length: 500 }, (_, i) => `r${i}`)
    expect(
      ids.every(
        (id) => selectVersion({ ...state, canary: { version: 'v2', weight: 0 } }, { requestId: id }).version === 'v1',
      ),
    ).toBe(true)
    expect(
      ids.every(
        (id) => selectVersion({ ...state, canary: { version: 'v2', weight: 100 } }, { requestId: id }).version === 'v2',
      ),
    ).toBe(true)
  })
})

// Both hosts must split by the same function: a caller that reaches the embedded host on one request and the gateway
// on the next (or a host restarted in between) keeps its version. Each executor is driven with the fixed vectors and
// answers which version served.
describe('the same canary choices on the embedded host and the gateway', () => {
  const FN = { name: 'plain', limits: { max_body_bytes: 1024 } } as unknown as FunctionConfig
  const call = (requestId: string): ExecutorCall => ({
    fn: FN,
    request: new Request('http://host.test/plain', { headers: { 'x-request-id': requestId } }),
    url: 'http://host.test/plain',
    path: '/plain',
    env: undefined,
    caller: { principal: { subject: 'anonymous', groups: [], clearance: 'public', anonymous: true } },
    invocationId: `inv-${requestId}`,
  })
  const choices = async (executor: Executor): Promise<Array<readonly [string, string]>> => {
    const out: Array<readonly [string, string]> = []
    // The ids of AT_30 are all valid header values (x-request-id), unlike some of BUCKETS.
    for (const [id] of AT_30) out.push([id, await (await executor.fetch(call(id))).text()])
    return out
  }

  let openwhisk: Server
  beforeAll(async () => {
    // The OpenWhisk controller's blocking invoke: answers with the name of the action it was asked for.
    openwhisk = createServer((req, res) => {
      const action = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.split('/').pop() ?? '')
      req.resume().on('end', () => {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ statusCode: 200, headers: { 'content-type': 'text/plain' }, body: action }))
      })
    })
    await new Promise<void>((resolve) => openwhisk.listen(0, '127.0.0.1', resolve))
  })
  afterAll(() => new Promise<void>((resolve) => openwhisk.close(() => resolve())))

  it('the embedded host picks the expected version for each vector', async () => {
    const pool = (version: string) =>
      ({ fetch: async () => new Response(version), cancel: () => undefined, close: async () => undefined }) as unknown
    const versions = new VersionedFunction(
      'plain',
      async (bundle) => pool(bundle.version) as IsolatePool,
      {
        routing: async () => structuredClone(ROUTING_30),
        bundle: async (v) => ({ version: v }) as FunctionBundle,
      },
      SILENT_LOGGER,
    )
    await versions.refresh()
    const loaded = { config: FN, pool: pool('not routed'), versions }
    const functions = { get: (name: string) => (name === 'plain' ? loaded : undefined) } as unknown as FunctionSet
    expect(await choices(isolateExecutor(functions))).toEqual(AT_30)
  })

  it('the gateway picks the same version (action) for each vector', async () => {
    const executor = openWhiskExecutor({
      project: { name: 'canary', functions: [] } as unknown as Project,
      apihost: `http://127.0.0.1:${(openwhisk.address() as AddressInfo).port}`,
      auth: 'uuid:key',
      namespace: '_',
      current: () => ({ plain: 'v1' }),
      routing: () => ({ plain: { stable: 'v1', canary: { version: 'v2', weight: 30 } } }),
      record: () => undefined,
    })
    expect(await choices(executor)).toEqual(AT_30)
  })
})
