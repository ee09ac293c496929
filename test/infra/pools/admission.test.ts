import { describe, expect, it } from 'vitest'

import { Admission } from '../../../infra/pools/admission.ts'
import { isSovraError } from '../../../runtime/core/errors.ts'

const later = (): number => Date.now() + 60_000

describe('Admission', () => {
  it('hands free slots out at once, then queues', async () => {
    const a = new Admission(2, 10, Date.now, 2)
    const g1 = await a.acquire('batch', later())
    const g2 = await a.acquire('batch', later())
    expect(new Set([g1.slot, g2.slot])).toEqual(new Set([0, 1]))
    expect(a.busy).toBe(2)
    const waiting = a.acquire('batch', later())
    expect(a.depth('batch')).toBe(1)
    a.release(g1.slot)
    expect((await waiting).slot).toBe(g1.slot)
  })

  it('serves every queued interactive request before any batch request, FIFO within a class', async () => {
    const a = new Admission(1, 10)
    const held = await a.acquire('batch', later())
    const order: string[] = []
    const wait = (name: string, cls: 'interactive' | 'batch'): Promise<void> =>
      a.acquire(cls, later()).then((g) => {
        order.push(name)
        a.release(g.slot)
      })
    const all = Promise.all([
      wait('b1', 'batch'),
      wait('i1', 'interactive'),
      wait('b2', 'batch'),
      wait('i2', 'interactive'),
    ])
    a.release(held.slot)
    await all
    expect(order).toEqual(['i1', 'i2', 'b1', 'b2'])
  })

  it('refuses with ERR_QUEUE_FULL (429, retry_after) when the queue is full, and loses no queued request', async () => {
    const a = new Admission(1, 1)
    const held = await a.acquire('interactive', later())
    const queued = a.acquire('interactive', later())
    const refused = await a.acquire('batch', later()).catch((e: unknown) => e)
    expect(isSovraError(refused) && refused.code).toBe('ERR_QUEUE_FULL')
    expect(isSovraError(refused) && refused.status).toBe(429)
    expect(isSovraError(refused) && refused.details?.['retry_after']).toBe(1)
    a.release(held.slot)
    expect((await queued).slot).toBe(held.slot)
  })

  it('drops a request whose deadline passes while queued (504) and keeps the slot for the next one', async () => {
    const a = new Admission(1, 10)
    const held = await a.acquire('interactive', later())
    const dropped = await a.acquire('interactive', Date.now() + 30).catch((e: unknown) => e)
    expect(isSovraError(dropped) && dropped.code).toBe('ERR_TIMEOUT')
    expect(isSovraError(dropped) && dropped.message).toMatch(/deadline passed after \d+ ms in the queue/)
    expect(a.depth('interactive')).toBe(0)
    const next = a.acquire('batch', later())
    a.release(held.slot)
    expect((await next).slot).toBe(held.slot)
  })

  it('removes a waiter whose caller went away', async () => {
    const a = new Admission(1, 10)
    await a.acquire('interactive', later())
    const c = new AbortController()
    const p = a.acquire('interactive', later(), c.signal).catch((e: unknown) => e)
    c.abort(new Error('client gone'))
    expect(((await p) as Error).message).toBe('client gone')
    expect(a.depth('interactive')).toBe(0)
  })
})

describe('Admission: interactive reserve', () => {
  it('lets batch work hold all slots but one, so an interactive request starts at once', async () => {
    const a = new Admission(3, 10)
    expect(a.batchSlots).toBe(2)
    const b1 = await a.acquire('batch', later())
    await a.acquire('batch', later())
    const b3 = a.acquire('batch', later())
    expect(a.depth('batch')).toBe(1)
    const i = await a.acquire('interactive', later())
    expect(a.busy).toBe(3)
    // The reserve is back when the interactive request ends; the queued batch request takes a batch slot instead.
    a.release(b1.slot)
    expect((await b3).slot).toBe(b1.slot)
    a.release(i.slot)
    expect(a.batchBusy).toBe(2)
    expect(a.busy).toBe(2)
  })

  it('gives a single-slot replica to batch work when no interactive request waits', async () => {
    const a = new Admission(1, 10)
    expect(a.batchSlots).toBe(1)
    const b = await a.acquire('batch', later())
    const i = a.acquire('interactive', later())
    const b2 = a.acquire('batch', later())
    a.release(b.slot)
    expect((await i).slot).toBe(b.slot)
    a.release(b.slot)
    expect((await b2).slot).toBe(b.slot)
  })
})
