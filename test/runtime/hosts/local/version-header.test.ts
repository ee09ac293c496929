import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createPromMetrics } from '../../../../infra/observe/metrics.ts'
import { loadConfig } from '../../../../runtime/config/load.ts'
import { createLocalApp } from '../../../../runtime/hosts/local/app.ts'
import { FunctionSet } from '../../../../runtime/hosts/local/functions.ts'
import { captureLogger, HEAVY_HOOK_MS, tempProject, withFixtures } from '../../../helpers.ts'

// Functions not under the control plane: the working tree's build serves, and names itself by its bundle version.
const CONFIG = `
name = "working-tree"
[[functions]]
name = "plain"
main = "fixtures/plain.js"
routes = ["/plain"]

[[functions]]
name = "throws"
main = "fixtures/throws.ts"
routes = ["/boom"]
`

describe('x-sovra-version on the embedded host (working tree)', () => {
  const metrics = createPromMetrics()
  let functions: FunctionSet
  let app: ReturnType<typeof createLocalApp>

  beforeAll(async () => {
    const dir = withFixtures(tempProject({ 'wrangler-compat.toml': CONFIG }))
    const { project } = loadConfig({ cwd: dir, processEnv: {} })
    functions = await FunctionSet.load(project, {
      observer: { onInvocation: (r) => metrics.onInvocation(r), onIsolate: (e) => metrics.onIsolate(e) },
    })
    app = createLocalApp({ project, functions, log: captureLogger(), metrics })
  }, HEAVY_HOOK_MS)
  afterAll(() => functions.close(0))

  it('names the bundle that served a response, a set-cookie response and a handler error alike', async () => {
    const plain = functions.get('plain')?.pool.bundle.version as string
    expect(plain).toMatch(/^[0-9a-f]{12}$/)
    // plain.js answers with two set-cookie headers: the header list path, not the plain record.
    const ok = await app.request('/plain')
    expect(ok.status).toBe(200)
    expect(ok.headers.get('x-sovra-version')).toBe(plain)
    expect(ok.headers.getSetCookie()).toEqual(['a=1', 'b=2'])
    const boom = await app.request('/boom')
    expect(boom.status).toBe(500)
    expect(boom.headers.get('x-sovra-version')).toBe(functions.get('throws')?.pool.bundle.version)
    expect(boom.headers.get('x-sovra-invocation-id')).toBe(
      ((await boom.json()) as { error: { invocation_id: string } }).error.invocation_id,
    )
    // No function served a 404: no version to name.
    expect((await app.request('/nowhere')).headers.get('x-sovra-version')).toBeNull()
  })

  it('labels invocation metrics with that version, and lists no routed versions in /_sovra/functions', async () => {
    const plain = functions.get('plain')?.pool.bundle.version as string
    await app.request('/plain')
    const body = await (await app.request('/_sovra/metrics')).text()
    expect(body).toMatch(
      new RegExp(
        `^sovra_invocations_total\\{function="plain",version="${plain}",trigger="http",status="200",outcome="ok"\\} [1-9]`,
        'm',
      ),
    )
    expect(body).toContain(`sovra_invocation_queue_seconds_count{function="plain",version="${plain}"}`)
    const listed = (await (await app.request('/_sovra/functions')).json()) as Array<{
      name: string
      bundle: { version: string }
      versions: unknown
    }>
    expect(listed.find((f) => f.name === 'plain')).toMatchObject({ bundle: { version: plain }, versions: null })
  })
})
