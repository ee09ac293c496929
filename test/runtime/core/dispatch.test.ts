import { describe, expect, it } from 'vitest'

import {
  dispatchEvent,
  dispatchFetch,
  functionModule,
  handlerNames,
  WaitUntil,
} from '../../../runtime/core/dispatch.ts'
import { isSovraError } from '../../../runtime/core/errors.ts'
import { createExecutionContext } from '../../../runtime/testing/index.ts'
import type { ObjectEvent } from '../../../runtime/core/handlers.ts'

const event: ObjectEvent = {
  type: 'created',
  bucket: 'docs',
  key: 'a.md',
  size: 1,
  etag: 'e',
  versionId: undefined,
  sequencer: '1',
  contentType: 'text/markdown',
  metadata: {},
  eventName: 's3:ObjectCreated:Put',
  time: new Date(0).toISOString(),
  source: 'fs',
}

describe('WaitUntil', () => {
  it('settles promises added while earlier ones run, and returns every rejection without throwing', async () => {
    const waits = new WaitUntil()
    const order: string[] = []
    waits.add(
      (async () => {
        await new Promise((r) => setTimeout(r, 5))
        order.push('first')
        // Registered after settle() began: still awaited.
        waits.add(new Promise((r) => setTimeout(r, 5)).then(() => order.push('nested')))
        waits.add(Promise.reject(new Error('late failure')))
      })(),
    )
    waits.add(Promise.reject(new Error('early failure')))
    expect(waits.empty).toBe(false)
    const errors = await waits.settle()
    expect(order).toEqual(['first', 'nested'])
    expect(errors.map((e) => (e as Error).message).sort()).toEqual(['early failure', 'late failure'])
  })

  it('is empty until something is registered', async () => {
    const waits = new WaitUntil()
    expect(waits.empty).toBe(true)
    expect(await waits.settle()).toEqual([])
  })
})

describe('dispatch', () => {
  it('checks a module: an object with at least one handler, naming what it got otherwise', () => {
    expect(() => functionModule(null)).toThrow(/default export is null/)
    expect(() => functionModule(() => undefined)).toThrow(/default export is function/)
    expect(() => functionModule({ hello: 1 })).toThrow(/no fetch, scheduled or object handler/)
    expect(handlerNames(functionModule({ fetch: () => new Response(), object: () => undefined }))).toEqual([
      'fetch',
      'object',
    ])
  })

  it('runs fetch and refuses a handler that returns something other than a Response (ERR_HANDLER)', async () => {
    const ok = await dispatchFetch(
      { fetch: (r: Request) => new Response(`hi ${new URL(r.url).pathname}`) },
      'f',
      new Request('http://x/a'),
      {},
      createExecutionContext(),
    )
    expect(await ok.text()).toBe('hi /a')
    const e = await dispatchFetch(
      { fetch: () => 'nope' as unknown as Response },
      'f',
      new Request('http://x/'),
      {},
      createExecutionContext(),
    ).catch((x: unknown) => x)
    expect(isSovraError(e) && e.code).toBe('ERR_HANDLER')
    expect((e as Error).message).toMatch(/fetch handler of "f" returned string; it must return a Response/)
  })

  it('answers a missing handler with ERR_NO_HANDLER (501) naming the handlers the module has', async () => {
    const e = await dispatchFetch(
      { scheduled: () => undefined },
      'cron-only',
      new Request('http://x/'),
      {},
      createExecutionContext(),
    ).catch((x: unknown) => x)
    expect(isSovraError(e) && e.status).toBe(501)
    expect((e as Error).message).toBe('function "cron-only" has no fetch handler; it exports: scheduled')
    const out = await dispatchEvent(
      { fetch: () => new Response() },
      'web',
      { handler: 'object', event },
      {},
      createExecutionContext(),
      new WaitUntil(),
    )
    expect(out.ok).toBe(false)
    expect((out as { error: Error }).error.message).toBe('function "web" has no object handler; it exports: fetch')
  })

  it('reports noRetry from a failing scheduled handler and settles its waitUntil work first', async () => {
    const waits = new WaitUntil()
    let background = false
    const ctx = { ...createExecutionContext(), waitUntil: (p: Promise<unknown>) => waits.add(p) }
    const out = await dispatchEvent(
      {
        scheduled(
          controller: { noRetry(): void; cron: string },
          _env: unknown,
          c: { waitUntil(p: Promise<unknown>): void },
        ) {
          c.waitUntil(
            new Promise((r) => setTimeout(r, 10)).then(() => {
              background = true
            }),
          )
          controller.noRetry()
          throw new Error(`bad run of ${controller.cron}`)
        },
      },
      'nightly',
      { handler: 'scheduled', cron: '0 2 * * *', scheduledTime: 0 },
      {},
      ctx,
      waits,
    )
    expect(out).toMatchObject({ ok: false, noRetry: true })
    expect((out as { error: Error }).error.message).toBe('bad run of 0 2 * * *')
    expect(background).toBe(true)
  })

  it('passes the object event through and succeeds without noRetry', async () => {
    const seen: ObjectEvent[] = []
    const out = await dispatchEvent(
      { object: (e: ObjectEvent) => void seen.push(e) },
      'indexer',
      { handler: 'object', event },
      {},
      createExecutionContext(),
      new WaitUntil(),
    )
    expect(out).toEqual({ ok: true, noRetry: false })
    expect(seen).toEqual([event])
  })
})
