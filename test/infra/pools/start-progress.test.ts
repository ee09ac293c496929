import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { businessCalendar } from '../../../infra/pools/calendar.ts'
import { PoolManager, type ManagedReplica } from '../../../infra/pools/manager.ts'
import { prepareTinyModels } from '../../../infra/pools/start.ts'
import { captureLogger } from '../../helpers.ts'
import { poolConfig } from '../../support/pools.ts'

let root: string
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sovra-progress-'))
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

/** A spawner whose replicas become ready on the next turn, 42 ms after they "started". */
function readySpawner(): (pool: unknown, id: string, onSettled: (r: ManagedReplica) => void) => ManagedReplica {
  return (_pool, id, onSettled) => {
    const r: ManagedReplica = {
      id,
      url: 'http://127.0.0.1:9',
      state: 'starting',
      outstanding: 0,
      operations: ['chat'],
      modelDigest: undefined,
      status: undefined,
      readyAt: undefined,
      startedAt: 1000,
      stop: async () => {
        r.state = 'stopped'
      },
    }
    setImmediate(() => {
      r.state = 'ready'
      r.readyAt = 1042
      onSettled(r)
    })
    return r
  }
}

describe('pool start progress', () => {
  it('logs a line per replica warming (i/n) and per replica warm, with its time', async () => {
    const log = captureLogger()
    const pools = [
      poolConfig({
        name: 'duo',
        engine: 'llama',
        model: 'tiny:llama',
        tier: 'internal',
        min_replicas: 2,
        max_replicas: 2,
      }),
      poolConfig({ name: 'embed', engine: 'onnx', model: 'tiny:embed', tier: 'internal' }),
    ]
    const m = new PoolManager({ pools, calendar: businessCalendar({}), spawn: readySpawner(), log })
    try {
      await m.start()
    } finally {
      await m.close(0)
    }
    const progress = log.lines.filter((l) => /^(warming|pool .* warm in)/.test(l.msg)).map((l) => l.msg)
    expect(progress).toEqual([
      'warming pool duo replica 1/2 (duo-1, llama tiny:llama)',
      'warming pool duo replica 2/2 (duo-2, llama tiny:llama)',
      'warming pool embed replica 1/1 (embed-1, onnx tiny:embed)',
      'pool duo replica 1/2 warm in 42 ms (duo-1)',
      'pool duo replica 2/2 warm in 42 ms (duo-2)',
      'pool embed replica 1/1 warm in 42 ms (embed-1)',
    ])
    expect(log.lines.find((l) => l.msg.startsWith('pool embed replica 1/1 warm'))).toMatchObject({
      pool: 'embed',
      replica: 'embed-1',
      index: 1,
      of: 1,
      start_ms: 42,
    })
  })

  it('generates each missing tiny model once before replicas start, saying so, and is quiet when they exist', async () => {
    const models = join(root, 'models')
    const pools = [
      poolConfig({ name: 'a', engine: 'onnx', model: 'tiny:embed', tier: 'internal' }),
      poolConfig({ name: 'b', engine: 'onnx', model: 'tiny:embed', tier: 'internal', class: 'batch' }),
      poolConfig({ name: 'c', engine: 'onnx', model: join(root, 'elsewhere'), tier: 'internal' }),
    ]
    const log = captureLogger()
    await prepareTinyModels(pools, models, log)
    expect(log.lines.map((l) => l.msg)).toEqual([
      'generating tiny model tiny:embed...',
      expect.stringMatching(/^tiny model tiny:embed generated in \d+ ms$/),
    ])
    expect(log.lines[1]).toMatchObject({ model: 'tiny:embed', path: join(models, 'tiny-embed', 'model.onnx') })
    expect(await readdir(models)).toEqual(['tiny-embed'])
    const again = captureLogger()
    await prepareTinyModels(pools, models, again)
    expect(again.lines).toEqual([])
  })
})
