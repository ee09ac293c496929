import { describe, expect, it } from 'vitest'
import { createExecutionContext } from 'sovra/testing'
import echo, { type EchoReply } from '../../functions/echo/index.ts'

describe('echo', () => {
  it('returns method, path, query, headers and body as JSON', async () => {
    const ctx = createExecutionContext({ invocation: { id: 'inv-1', function: 'echo' } })
    const res = await echo.fetch?.(
      new Request('http://local/v1/echo/a?x=1&x=2&y=z', {
        method: 'PATCH',
        body: 'hello',
        headers: { 'x-test': 'yes' },
      }),
      {},
      ctx,
    )
    expect(res?.headers.get('content-type')).toMatch(/application\/json/)
    const reply = (await res?.json()) as EchoReply
    expect(reply).toEqual({
      method: 'PATCH',
      path: '/v1/echo/a',
      query: { x: ['1', '2'], y: 'z' },
      headers: { 'content-type': 'text/plain;charset=UTF-8', 'x-test': 'yes' },
      body: 'hello',
      invocation: { id: 'inv-1', function: 'echo', version: 'test', trigger: 'http' },
    })
  })

  it('reports a null body for GET', async () => {
    const res = await echo.fetch?.(new Request('http://local/v1/echo'), {}, createExecutionContext())
    expect(((await res?.json()) as EchoReply).body).toBeNull()
  })
})
