import { describe, expect, it } from 'vitest'
import { LightResponse } from '../../../runtime/isolate/fast-response.ts'

const R = LightResponse as unknown as typeof Response

describe('LightResponse (the isolate global Response)', () => {
  it('matches undici for status, statusText and default content types', async () => {
    for (const [body, init] of [
      ['hi', undefined],
      [new Uint8Array([1, 2]), { status: 201 }],
      [null, { status: 204 }],
      ['x', { headers: { 'Content-Type': 'text/html' } }],
    ] as const) {
      const light = new R(body as BodyInit | null, init)
      const native = new Response(body as BodyInit | null, init)
      expect(light.status).toBe(native.status)
      expect(light.ok).toBe(native.ok)
      expect([...light.headers]).toEqual([...native.headers])
      expect(await light.text()).toBe(await native.text())
    }
  })

  it('implements Response.json like undici', async () => {
    const light = R.json({ a: 1 }, { status: 201, headers: { 'x-a': '1' } })
    const native = Response.json({ a: 1 }, { status: 201, headers: { 'x-a': '1' } })
    expect([...light.headers]).toEqual([...native.headers])
    expect(await light.json()).toEqual({ a: 1 })
  })

  it('validates at construction as the standard says', () => {
    expect(() => new R('x', { status: 99 })).toThrowError(RangeError)
    expect(() => new R('x', { status: 204 })).toThrowError(/Invalid response status code 204/)
    expect(() => new R('x', { headers: { 'bad header': 'v' } })).toThrowError(TypeError)
  })

  it('is an instance of Response, and native Responses are instances of it', () => {
    expect(new R('x') instanceof LightResponse).toBe(true)
    expect(new Response('x') instanceof LightResponse).toBe(true)
    expect({} instanceof LightResponse).toBe(false)
  })

  it('hands over a simple body without a stream, and nothing once the body was read', async () => {
    const r = new R('héllo', { status: 202 })
    r.headers.set('x-late', 'yes')
    const simple = LightResponse.takeSimple(r)
    expect(simple?.status).toBe(202)
    expect(simple?.headers).toEqual(['content-type', 'text/plain;charset=UTF-8', 'x-late', 'yes'])
    // A string body stays a string: the host writes it with the head in one write.
    expect(simple?.body).toBe('héllo')
    const bytes = new Uint8Array([1, 2, 3])
    expect(LightResponse.takeSimple(new R(bytes))?.body).toBe(bytes)
    expect(LightResponse.takeSimple(new R(bytes.buffer))?.body).toEqual(bytes)
    const read = new R('abc')
    expect(await read.text()).toBe('abc')
    expect(LightResponse.takeSimple(read)).toBeUndefined()
    const streamed = new R(new ReadableStream({ start: (c) => c.close() }))
    expect(LightResponse.takeSimple(streamed)).toBeUndefined()
    expect(streamed.body).not.toBeNull()
  })
})
