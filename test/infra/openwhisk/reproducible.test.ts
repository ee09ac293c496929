import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { loadConfig } from '../../../runtime/config/load.ts'
import { buildAction } from '../../../infra/targets/openwhisk/build.ts'
import { runCli, tempProject, withFixtures } from '../../helpers.ts'

describe('OpenWhisk builds', () => {
  it('are reproducible wherever they are written: the same sha256 for two --out folders', async () => {
    const dir = withFixtures(
      tempProject({
        'wrangler-compat.toml': '[[functions]]\nname = "plain"\nmain = "fixtures/plain.js"\nroutes = ["/plain"]\n',
      }),
    )
    const fn = loadConfig({ cwd: dir, processEnv: {} }).project.functions[0]!
    const a = await buildAction(fn, join(dir, 'dist', 'one'), dir)
    const b = await buildAction(fn, join(dir, 'elsewhere', 'deeper', 'two'), dir)
    expect(a.path).not.toBe(b.path)
    expect(b.sha256).toBe(a.sha256)
  }, 60_000)

  it('a dry run (--plan) needs no signing key; a deploy that applies does', async () => {
    const dir = withFixtures(
      tempProject({
        'wrangler-compat.toml':
          'name = "dry"\n[[functions]]\nname = "plain"\nmain = "fixtures/plain.js"\nroutes = ["/plain"]\n',
      }),
    )
    const c = ['--config', join(dir, 'wrangler-compat.toml')]
    // The local target: the plan needs no key, applying does.
    const plan = await runCli(['deploy', '--plan', ...c])
    expect(plan.code).toBe(0)
    expect(plan.out).toMatch(/^plan: plain plain@[0-9a-f]{12}-[0-9a-f]{8} -> stable$/m)
    expect((await runCli(['deploy', ...c])).err).toMatch(/no signing key "default"/)
  }, 60_000)
})
