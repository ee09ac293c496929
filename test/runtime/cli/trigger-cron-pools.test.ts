import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { HEAVY_HOOK_MS, runCli, tempProject } from '../../helpers.ts'

// A cron whose handler calls env.AI, and one tiny pool that serves it.
const CONFIG = `
[[functions]]
name = "nightly"
main = "nightly.js"
crons = ["0 2 * * *"]
tier = "internal"
ai = { binding = "AI" }

[[pools]]
name = "qa-tiny"
alias = "qa"
engine = "llama"
model = "tiny:llama"
tier = "internal"
threads = 1
probe = false
`
const NIGHTLY = `export default {
  async scheduled(controller, env) {
    const r = await env.AI.chat({ model: 'qa', messages: [{ role: 'user', content: controller.cron }], max_tokens: 4 })
    if (typeof r.text !== 'string') throw new Error('no text from env.AI')
  },
}
`

describe('sovra trigger cron without a host', () => {
  // Issue 11: the local run started no pools, so an AI-bound function failed with ERR_CONFIG "binds AI but this host
  // runs no inference pools; add [[pools]]" although the config has them (sovra invoke --scheduled worked).
  it(
    'starts the pools the function needs, as invoke does, and the run succeeds',
    async () => {
      const dir = tempProject({ 'wrangler-compat.toml': CONFIG, 'nightly.js': NIGHTLY })
      const res = await runCli([
        'trigger',
        'cron',
        'nightly',
        '--config',
        join(dir, 'wrangler-compat.toml'),
        '--state',
        join(dir, 'state'),
      ])
      expect(res.err).toMatch(/no host answers at .*; running the scheduled handler once here/)
      expect(res.err).not.toMatch(/ERR_CONFIG|no inference pools/)
      expect(res.out).toMatch(/^cron nightly: ok$/m)
      expect(res.code).toBe(0)
    },
    HEAVY_HOOK_MS,
  )
})
