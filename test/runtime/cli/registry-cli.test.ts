import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { loadPoolEngine } from '../../../infra/pools/load-engine.ts'
import { writeTinyLlama } from '../../../infra/pools/tiny/tiny-gguf.ts'
import { Registry } from '../../../infra/registry/registry.ts'
import { trustPolicy } from '../../../infra/registry/trust.ts'
import { FsBucket } from '../../../infra/storage/fs-bucket.ts'
import { isSovraError } from '../../../runtime/core/errors.ts'
import { runCli, tempProject } from '../../helpers.ts'
import { poolConfig } from '../../support/pools.ts'

const dir = tempProject({
  'wrangler-compat.toml': 'name = "reg"\n[[pools]]\nname = "qa"\nengine = "llama"\nmodel = "tiny:llama"\n',
})
const cfg = ['--config', join(dir, 'wrangler-compat.toml'), '--state', join(dir, 'state')]
process.env['SOVRA_ACTOR'] = 'alice'

describe('signed model registry from the CLI', () => {
  let ref = ''
  let publicKey = ''

  it('keys gen writes a 0600 key, trusts it locally and prints the public key', async () => {
    const res = await runCli(['keys', 'gen', '--name', 'ml-team', '--kinds', 'model,bundle', ...cfg])
    expect(res.code).toBe(0)
    publicKey = /public key .*: (\S+)$/m.exec(res.out)?.[1] ?? ''
    expect(Buffer.from(publicKey, 'base64')).toHaveLength(32)
    expect(statSync(join(dir, '.sovra', 'keys', 'ml-team.key')).mode & 0o777).toBe(0o600)
    expect(JSON.parse(readFileSync(join(dir, '.sovra', 'keys', 'trust.json'), 'utf8'))).toEqual([
      { name: 'ml-team', public_key: publicKey, kinds: ['model', 'bundle'] },
    ])
  }, 60_000)

  it('models push prints the reference; ls and verify show signer, lineage and legal basis', async () => {
    await writeTinyLlama(join(dir, 'qa-ja.gguf'))
    const res = await runCli([
      'models',
      'push',
      join(dir, 'qa-ja.gguf'),
      '--name',
      'qa-ja',
      '--version',
      '2026.11',
      '--key',
      'ml-team',
      '--legal-basis',
      'contract',
      '--lineage',
      `sha256:${'b'.repeat(64)}`,
      ...cfg,
    ])
    expect(res.code).toBe(0)
    ref = res.out.trim()
    expect(ref).toMatch(/^registry:qa-ja@sha256:[0-9a-f]{64}$/)
    expect((await runCli(['models', 'ls', ...cfg])).out).toMatch(
      /registry:qa-ja@sha256:[0-9a-f]{64} {2}2026\.11 .* by alice {2}signed ml-team .*legal_basis=contract {2}lineage=sha256:b{64}/,
    )
    const v = await runCli(['models', 'verify', ref, ...cfg])
    expect(v.code).toBe(0)
    expect(v.out).toMatch(/signed by ml-team \([0-9a-f]{16}\), created by alice/)
    expect(v.out).toContain(`lineage: sha256:${'b'.repeat(64)}; legal basis: contract`)
    expect((await runCli(['verify', 'registry:qa-ja:latest', ...cfg])).code).toBe(0)
  }, 60_000)

  it('a pool loads a registry model only after verifying it, and refuses a tampered one with ERR_SIGNATURE', async () => {
    const bucket = new FsBucket('sovra-artifacts', join(dir, 'state', 'buckets'))
    const registry = new Registry(bucket)
    const trust = trustPolicy([{ name: 'ml-team', public_key: publicKey, kinds: ['model'] }])
    const pool = poolConfig({ name: 'qa', engine: 'llama', model: ref, threads: 1, probe: false })
    const engine = await loadPoolEngine(pool, { stateDir: join(dir, 'state'), registry: { registry, trust } })
    expect(`registry:qa-ja@sha256:${engine.model.sha256}`).toBe(ref)
    await engine.close()
    const sha = ref.split(':').at(-1) as string
    const bytes = readFileSync(join(dir, 'qa-ja.gguf'))
    bytes[100] = (bytes[100] as number) ^ 0xff
    await bucket.put(`blobs/sha256/${sha}`, bytes)
    const e = await loadPoolEngine(pool, { stateDir: join(dir, 'state2'), registry: { registry, trust } }).catch(
      (x: unknown) => x,
    )
    expect(isSovraError(e) && e.code).toBe('ERR_SIGNATURE')
    expect(isSovraError(e) && e.message).toContain(`expected sha256 ${sha}`)
    const cli = await runCli(['models', 'verify', ref, ...cfg])
    expect(cli.code).toBe(1)
    expect(cli.err).toMatch(/refused: model registry:qa-ja@sha256:[0-9a-f]+: qa-ja.gguf was tampered with/)
  }, 60_000)

  it('sign and verify a file; a changed byte or a missing signature is refused', async () => {
    const file = join(dir, 'bundle.mjs')
    writeFileSync(file, 'export default {}\n')
    expect((await runCli(['sign', file, '--key', 'ml-team', ...cfg])).code).toBe(0)
    expect((await runCli(['verify', file, ...cfg])).out).toMatch(/valid: .* signed by ml-team/)
    writeFileSync(file, 'export default { x: 1 }\n')
    const changed = await runCli(['verify', file, ...cfg])
    expect(changed.code).toBe(1)
    expect(changed.err).toMatch(
      /was changed after signing: the manifest says sha256 [0-9a-f]+, the file hashes to [0-9a-f]+/,
    )
    expect((await runCli(['verify', join(dir, 'qa-ja.gguf'), ...cfg])).err).toMatch(/is unsigned/)
  }, 60_000)

  it('the audit log records key creation, pushes and refusals, and its chain verifies', async () => {
    const log = await runCli(['audit', ...cfg])
    expect(log.out).toMatch(/alice +key\.create +key:[0-9a-f]{16}/)
    expect(log.out).toMatch(/alice +artifact\.push +model:qa-ja {2}after=sha256:[0-9a-f]{64}/)
    expect(log.out).toMatch(/alice +signature\.refused +registry:qa-ja@sha256:/)
    const v = await runCli(['audit', 'verify', ...cfg])
    expect(v.code).toBe(0)
    expect(v.out).toMatch(/^yes: the audit chain is intact \(\d+ entries\)/)
  }, 60_000)
})
