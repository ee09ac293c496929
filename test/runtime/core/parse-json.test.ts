import { join } from 'node:path'
import * as v from 'valibot'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { parseJson } from '../../../runtime/core/parse-json.ts'
import { isSovraError } from '../../../runtime/core/errors.ts'
import { startTestHost, type TestHost } from '../../../runtime/testing/index.ts'
import { tempProject, withFixtures } from '../../helpers.ts'

const Body = v.object({
  question: v.pipe(v.string(), v.minLength(1)),
  items: v.optional(v.array(v.object({ id: v.number() }))),
})
const post = (body: string): Request => new Request('http://x/', { method: 'POST', body })

describe('parseJson', () => {
  it('returns the typed, validated body', async () => {
    const body = await parseJson(post('{"question":"育児休業は?","items":[{"id":1}]}'), Body)
    expect(body).toEqual({ question: '育児休業は?', items: [{ id: 1 }] })
  })

  it('refuses an empty body, and a body that is not JSON showing what it received', async () => {
    await expect(parseJson(post(''), Body)).rejects.toThrow('expected a JSON body, received an empty body')
    const e = await parseJson(post('question=1'), Body).catch((x: unknown) => x)
    expect(isSovraError(e) && e.status).toBe(400)
    expect((e as Error).message).toMatch(/^the body is not valid JSON \(.+\); received "question=1"$/)
  })

  it('lists every schema issue with its path, in the message and as details.issues', async () => {
    const e = await parseJson(post('{"question":"","items":[{"id":1},{"id":"two"}]}'), Body).catch((x: unknown) => x)
    expect(isSovraError(e) && e.code).toBe('ERR_BAD_REQUEST')
    const issues = (e as { details: { issues: Array<{ path: string; message: string }> } }).details.issues
    expect(issues.map((i) => i.path)).toEqual(['$.question', '$.items[1].id'])
    expect((e as Error).message).toMatch(/^invalid body: \$\.question: .+; \$\.items\[1\]\.id: .+number/)
  })
})

describe('parseJson in a function on the embedded host', () => {
  let host: TestHost
  beforeAll(async () => {
    const dir = withFixtures(
      tempProject({
        'wrangler-compat.toml': '[[functions]]\nname = "parse"\nmain = "fixtures/parse.ts"\nroutes = ["/parse"]\n',
      }),
    )
    host = await startTestHost({ config: join(dir, 'wrangler-compat.toml') })
  }, 60_000)
  afterAll(async () => host?.close())

  it('answers 400 ERR_BAD_REQUEST with the issues and the invocation id; a good body passes', async () => {
    const bad = await host.fetch('/parse', { method: 'POST', body: '{"items":[{"id":"x"}]}' })
    expect(bad.status).toBe(400)
    const body = (await bad.json()) as {
      error: { code: string; message: string; issues: Array<{ path: string }>; invocation_id: string }
    }
    expect(body.error.code).toBe('ERR_BAD_REQUEST')
    expect(body.error.issues.map((i) => i.path)).toEqual(['$.question', '$.items[0].id'])
    expect(body.error.invocation_id).toBe(bad.headers.get('x-sovra-invocation-id'))
    const ok = await host.fetch('/parse', { method: 'POST', body: '{"question":"q","items":[{"id":1}]}' })
    expect(await ok.json()).toEqual({ ok: true, question: 'q', items: 1 })
  })
})
