import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import * as esbuild from 'esbuild'
import { runCli, tempProject } from '../../helpers.ts'
import { loadConfig } from '../../../runtime/config/load.ts'
import { FunctionSet } from '../../../runtime/hosts/local/functions.ts'
import { describeProgress, type BundleProgress } from '../../../runtime/isolate/bundle-all.ts'
import { assemble, DEFAULT_MAX_FUNCTIONS } from '../../../infra/deploy/assemble.ts'

// Count esbuild builds: the real esbuild runs, the spy only counts.
vi.mock('esbuild', async (importOriginal) => {
  const actual = await importOriginal<typeof esbuild>()
  return { ...actual, build: vi.fn(actual.build) }
})

/** A project with `count` functions that all use one of two entry modules. */
function bigProject(count: number): string {
  const functions = Array.from(
    { length: count },
    (_, i) => `[[functions]]\nname = "f${i}"\nmain = "${i % 2 === 0 ? 'a' : 'b'}.js"\nroutes = ["/f${i}"]\n`,
  )
  return tempProject({
    'wrangler-compat.toml': `name = "big"\n${functions.join('\n')}`,
    'a.js': 'export default { fetch() { return new Response("a") } }\n',
    'b.js': 'export default { fetch() { return new Response("b") } }\n',
  })
}

const silent = { info() {}, warn() {}, error() {} }

describe('a config with thousands of functions (issue 11, R10)', () => {
  it('builds one bundle per distinct entry, not one per function, and reports progress', async () => {
    const dir = bigProject(5000)
    const { project } = loadConfig({ configPath: join(dir, 'wrangler-compat.toml') })
    const build = vi.mocked(esbuild.build)
    build.mockClear()
    const progress: BundleProgress[] = []
    // No warm isolates: this is about bundling, and 5000 pools with min 0 start no worker threads.
    const set = await FunctionSet.load(project, {
      outDir: join(dir, 'build'),
      isolates: { min: 0 },
      onBuild: (p) => progress.push(p),
    })
    try {
      expect(build).toHaveBeenCalledTimes(2)
      expect(set.all()).toHaveLength(5000)
      const f0 = set.get('f0')?.pool.bundle
      const f2 = set.get('f2')?.pool.bundle
      const f1 = set.get('f1')?.pool.bundle
      expect(f0?.sha256).toBe(f2?.sha256)
      expect(f0?.sha256).not.toBe(f1?.sha256)
      // Each function keeps its own file, as a single build writes it.
      expect(f2?.path).toBe(join(dir, 'build', `f2.${f2?.version}.mjs`))
      expect(readFileSync(f2?.path ?? '', 'utf8')).toMatch(/new Response\("a"\)/)
      expect(readdirSync(join(dir, 'build'))).toHaveLength(5000)
      expect(progress[0]).toMatchObject({ phase: 'start', functions: 5000, distinct: 2, built: 0 })
      expect(progress.at(-1)).toMatchObject({ phase: 'done', functions: 5000, distinct: 2, built: 2 })
      expect(describeProgress(progress[0] as BundleProgress)).toBe('building 5000 functions: 2 distinct bundles')
    } finally {
      await set.close(0)
    }
  }, 120_000)

  it(`refuses more than ${DEFAULT_MAX_FUNCTIONS} functions before opening anything, unless SOVRA_MAX_FUNCTIONS allows them`, async () => {
    const dir = bigProject(DEFAULT_MAX_FUNCTIONS + 1)
    const { project } = loadConfig({ configPath: join(dir, 'wrangler-compat.toml') })
    const options = { log: silent, pools: false, store: false } as const
    await expect(assemble(project, { ...options, env: {} })).rejects.toThrowError(
      expect.objectContaining({
        code: 'ERR_CONFIG',
        message: expect.stringMatching(
          new RegExp(
            `has ${DEFAULT_MAX_FUNCTIONS + 1} \\[\\[functions\\]\\] \\(2 distinct entry modules\\); one host serves at most ${DEFAULT_MAX_FUNCTIONS}.*SOVRA_MAX_FUNCTIONS=${DEFAULT_MAX_FUNCTIONS + 1}`,
          ),
        ),
      }),
    )
    await expect(assemble(project, { ...options, env: { SOVRA_MAX_FUNCTIONS: 'lots' } })).rejects.toThrowError(
      /SOVRA_MAX_FUNCTIONS: expected a whole number >= 1, received "lots"/,
    )
    const parts = await assemble(project, { ...options, env: { SOVRA_MAX_FUNCTIONS: '5000' } })
    await parts.close()
  }, 60_000)

  it('sovra start fails fast with that error instead of building for minutes', async () => {
    const dir = bigProject(DEFAULT_MAX_FUNCTIONS + 500)
    const saved = process.env['SOVRA_MAX_FUNCTIONS']
    delete process.env['SOVRA_MAX_FUNCTIONS']
    vi.mocked(esbuild.build).mockClear()
    try {
      const res = await runCli(['start', '--config', join(dir, 'wrangler-compat.toml'), '--port', '0'])
      expect(res.err).toMatch(
        new RegExp(`ERR_CONFIG: .*has ${DEFAULT_MAX_FUNCTIONS + 500} \\[\\[functions\\]\\].*SOVRA_MAX_FUNCTIONS`),
      )
      expect(res.code).toBe(1)
      expect(esbuild.build).not.toHaveBeenCalled()
    } finally {
      if (saved !== undefined) process.env['SOVRA_MAX_FUNCTIONS'] = saved
    }
  }, 60_000)
})
