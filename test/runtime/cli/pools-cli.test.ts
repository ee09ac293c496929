import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { writeTinyLlama } from '../../../infra/pools/tiny/tiny-gguf.ts'
import { runCli, tempProject } from '../../helpers.ts'

const POOLS = `
[[pools]]
name = "qa"
engine = "llama"
model = "models/qa.gguf"
tier = "confidential"
threads = 1
surge = [{ calendar = "month-end", business_days = 3, start = "08:00", end = "20:00", timezone = "Asia/Tokyo", min_replicas = 2, warmup_minutes = 30 }]
max_replicas = 2

[calendar]
holidays = ["2026-12-31"]
`

describe('sovra models / pool / pools', () => {
  it('make-tiny writes the three demo models and prints their sha256', async () => {
    const dir = tempProject({})
    const res = await runCli(['models', 'make-tiny', '--out', join(dir, 'models')])
    expect(res.code).toBe(0)
    const lines = res.out.trim().split('\n')
    expect(lines.map((l) => l.split(/\s+/)[0])).toEqual(['tiny:llama', 'tiny:embed', 'tiny:classify'])
    const gguf = join(dir, 'models', 'tiny-llama.gguf')
    expect(lines[0]).toContain(`sha256:${createHash('sha256').update(readFileSync(gguf)).digest('hex')}`)
    expect(readFileSync(gguf).subarray(0, 4).toString()).toBe('GGUF')
  }, 60_000)

  it('refuses a malformed GGUF with a clear error from the probe instead of aborting', async () => {
    const dir = tempProject({ 'wrangler-compat.toml': POOLS })
    // llama.cpp hits GGML_ASSERT (abort) on a llama model without feed_forward_length: only the probe child dies.
    await writeTinyLlama(join(dir, 'models', 'qa.gguf'), { omitKeys: ['llama.feed_forward_length'] })
    const res = await runCli([
      'pool',
      'serve',
      '--pool',
      'qa',
      '--port',
      '0',
      '--config',
      join(dir, 'wrangler-compat.toml'),
      '--state',
      join(dir, 'state'),
    ])
    expect(res.code).toBe(1)
    expect(res.err).toMatch(
      /ERR_CONFIG: model file ".*qa\.gguf" \(sha256 [0-9a-f]{12}\) failed the load probe in a child process: it (was killed by SIGABRT|exited with code \d+)/,
    )
  }, 60_000)

  it('names the valid pools when --pool is wrong', async () => {
    const dir = tempProject({ 'wrangler-compat.toml': POOLS })
    const res = await runCli(['pool', 'serve', '--pool', 'nope', '--config', join(dir, 'wrangler-compat.toml')])
    expect(res.code).toBe(2)
    expect(res.err).toMatch(/unknown pool "nope"; pools in .*: qa/)
  })

  it('pools shows the config and its next surge windows when no host runs', async () => {
    const dir = tempProject({ 'wrangler-compat.toml': POOLS })
    const res = await runCli(['pools', '--config', join(dir, 'wrangler-compat.toml'), '--json'])
    expect(res.code).toBe(0)
    const [qa] = JSON.parse(res.out) as Array<{
      name: string
      tier: string
      surge: { next: Array<{ day: string; opens_at: string }> }
    }>
    expect(qa?.name).toBe('qa')
    const next = qa?.surge.next ?? []
    expect(next).toHaveLength(3)
    for (const w of next) {
      // 08:00 in Tokyo is 23:00 UTC the day before, on a weekday that is not the holiday.
      expect(w.opens_at.slice(11, 16)).toBe('23:00')
      expect(w.day).not.toBe('2026-12-31')
      expect([0, 6]).not.toContain(new Date(`${w.day}T12:00:00Z`).getUTCDay())
    }
    // No --url: an explicit URL where nothing answers is an error (issue 11 R3); this project has no host.
    const table = await runCli(['pools', '--config', join(dir, 'wrangler-compat.toml')])
    expect(table.out).toMatch(/^POOL\s+MODEL\s+ENGINE/)
    expect(table.out).toMatch(/qa\s+qa\s+llama\s+confidential\/interactive/)
    expect(table.err).toMatch(/no host answers/)
  })
})
