import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { CallContext } from '../../../runtime/bindings/define.ts'
import { buildEnvSpec } from '../../../runtime/bindings/env.ts'
import type { Principal } from '../../../runtime/core/index.ts'
import { bundleFunction } from '../../../runtime/isolate/bundle.ts'
import { IsolatePool, type BindingHost } from '../../../runtime/isolate/pool.ts'
import { FIXTURES, waitFor } from '../../helpers.ts'

const OUT = mkdtempSync(join(tmpdir(), 'sovra-per-caller-'))
const pools: IsolatePool[] = []
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close(0)))
})

const ALICE: Principal = { subject: 'alice', groups: ['legal'], clearance: 'confidential' }
const BOB: Principal = { subject: 'bob', groups: [], clearance: 'public' }

/** A pool for the fixture whose binding host records each call's first argument and the context it was given. */
async function pool(perCaller: boolean) {
  const calls: Array<{ key: unknown; call: CallContext }> = []
  const bindings: BindingHost = async (_binding, _method, args, call) => {
    calls.push({ key: args[0], call })
    return { value: null, transfer: [] }
  }
  const bundle = await bundleFunction({ name: 'percaller', main: join(FIXTURES, 'per-caller.ts') }, OUT)
  const env = {
    vars: {},
    secrets: {},
    bindings: [{ type: 'bucket' as const, name: 'DOCS', bucket: 'docs' }],
    ...(perCaller ? { perCaller } : {}),
  }
  const p = new IsolatePool({
    name: 'percaller',
    bundle,
    env,
    bindings,
    limits: { timeout_ms: 5000, memory_mb: 64, max_body_bytes: 1 << 20 },
    // One isolate running both invocations at once: the calls interleave in one thread.
    isolates: { min: 1, max: 1, concurrency: 8, queue: 8 },
  })
  pools.push(p)
  await p.start()
  const callOf = (key: string) => calls.find((c) => c.key === key)?.call
  return { pool: p, calls, callOf, principalOf: (key: string) => callOf(key)?.principal }
}

describe('binding calls and the caller (perCaller)', () => {
  it('gives each call the principal of the invocation that made it, across awaits and interleaved invocations', async () => {
    const { pool: p, callOf, principalOf } = await pool(true)
    // Alice's invocation starts first but calls last (after Bob's has started and called): a "latest invocation"
    // guess would hand her calls Bob's principal.
    const [a, b] = await Promise.all([
      p.fetch(new Request('http://local/?key=a&wait=80&late'), { principal: ALICE }),
      p.fetch(new Request('http://local/?key=b'), { principal: BOB }),
    ])
    expect([await a.text(), await b.text()]).toEqual(['a', 'b'])
    expect(principalOf('a')).toEqual(ALICE)
    expect(principalOf('a-again')).toEqual(ALICE)
    expect(principalOf('b')).toEqual(BOB)
    expect(principalOf('b-again')).toEqual(BOB)
    // A call from a timer that outlived its invocation belongs to nobody: the host no longer runs that invocation.
    expect(await waitFor(() => callOf('a-late'))).toEqual({})
  })

  it('names no invocation when no binding asks for it (no tracking), so the host passes no principal', async () => {
    const { pool: p, calls } = await pool(false)
    await Promise.all([
      p.fetch(new Request('http://local/?key=a&wait=20'), { principal: ALICE }),
      p.fetch(new Request('http://local/?key=b'), { principal: BOB }),
    ])
    expect(calls.map((c) => c.key).sort()).toEqual(['a', 'a-again', 'b', 'b-again'])
    for (const c of calls) expect(c.call).toEqual({})
  })

  it('is asked for only by binding kinds that set perCaller (ai does: its log line names the invocation)', () => {
    const specOf = (bindings: unknown[]) =>
      buildEnvSpec(
        { vars: {}, secrets: [], bindings } as unknown as Parameters<typeof buildEnvSpec>[0],
        { pick: () => ({}) } as unknown as Parameters<typeof buildEnvSpec>[1],
      )
    expect(specOf([{ type: 'bucket', name: 'DOCS', bucket: 'docs' }]).perCaller).toBeUndefined()
    expect(specOf([{ type: 'ai', name: 'AI' }]).perCaller).toBe(true)
  })
})
