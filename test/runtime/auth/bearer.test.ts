import { describe, expect, it } from 'vitest'

import { checkBearer, MINIO_WEBHOOK_BEARER } from '../../../runtime/auth/bearer.ts'
import { isSovraError } from '../../../runtime/core/errors.ts'
import { createEventsBridgeMain } from '../../../runtime/hosts/openwhisk/events-bridge.ts'

const TOKEN = 'a-webhook-token-0123456789'
const RECORD = {
  eventName: 's3:ObjectCreated:Put',
  eventTime: '2026-11-27T01:00:00.000Z',
  s3: { bucket: { name: 'documents' }, object: { key: 'a.md', size: 1, eTag: 'e1', sequencer: '01' } },
}
const CHECK = { secret: 'SOME_TOKEN', disabled: 'the endpoint is disabled: set the secret SOME_TOKEN' }

function thrown(f: () => void): { code: string; status: number; message: string } {
  try {
    f()
  } catch (e) {
    if (isSovraError(e)) return { code: e.code, status: e.status, message: e.message }
    throw e
  }
  throw new Error('expected a refusal')
}

describe('checkBearer', () => {
  it('accepts the configured token', () => {
    expect(() => checkBearer(`Bearer ${TOKEN}`, TOKEN, CHECK)).not.toThrow()
  })

  it('takes the scheme in any case and after any number of spaces (RFC 7235 section 2.1)', () => {
    for (const header of [`bearer ${TOKEN}`, `BEARER ${TOKEN}`, `bEaReR ${TOKEN}`, `Bearer   ${TOKEN}`]) {
      expect(() => checkBearer(header, TOKEN, CHECK)).not.toThrow()
    }
    expect(thrown(() => checkBearer('bearer wrong', TOKEN, CHECK)).message).toMatch(/wrong token/)
  })

  it('refuses a wrong token of any length, another scheme and no header with 401 ERR_UNAUTHENTICATED', () => {
    for (const header of [
      `Bearer ${TOKEN.slice(0, -1)}x`,
      'Bearer x',
      `Bearer ${TOKEN}${TOKEN}`,
      `Basic ${TOKEN}`,
      `bearer${TOKEN}`,
    ]) {
      expect(thrown(() => checkBearer(header, TOKEN, CHECK))).toMatchObject({
        code: 'ERR_UNAUTHENTICATED',
        status: 401,
      })
    }
    expect(thrown(() => checkBearer(undefined, TOKEN, CHECK))).toEqual({
      code: 'ERR_UNAUTHENTICATED',
      status: 401,
      message: 'missing Authorization: Bearer <SOME_TOKEN>',
    })
  })

  it('refuses everything when no token is configured, saying how to enable it', () => {
    for (const token of [undefined, '']) {
      expect(thrown(() => checkBearer('Bearer ', token, CHECK))).toEqual({
        code: 'ERR_UNAUTHENTICATED',
        status: 401,
        message: CHECK.disabled,
      })
    }
  })

  it('is what the OpenWhisk events bridge answers with: the same code and status as the embedded host', async () => {
    const main = createEventsBridgeMain(async () => undefined)
    const call = (auth: string | undefined, token: string | undefined): Promise<Record<string, unknown>> =>
      main({
        __ow_method: 'post',
        __ow_path: '',
        __ow_query: '',
        __ow_body: btoa(JSON.stringify({ Records: [RECORD] })),
        __ow_headers: auth === undefined ? {} : { authorization: auth },
        __sovra: { routes: [], ...(token === undefined ? {} : { webhook_token: token }) },
      })
    for (const [auth, token, message] of [
      ['Bearer nope', TOKEN, /wrong token/],
      [undefined, TOKEN, /missing Authorization: Bearer <MINIO_WEBHOOK_TOKEN>/],
      [`Bearer ${TOKEN}`, undefined, /webhook is disabled/],
    ] as const) {
      const r = await call(auth, token)
      expect(r['statusCode']).toBe(401)
      expect(JSON.parse(String(r['body'])).error).toMatchObject({
        code: 'ERR_UNAUTHENTICATED',
        message: expect.stringMatching(message),
      })
    }
    expect((await call(`Bearer ${TOKEN}`, TOKEN))['statusCode']).toBe(200)
    expect(MINIO_WEBHOOK_BEARER.secret).toBe('MINIO_WEBHOOK_TOKEN')
  })
})
