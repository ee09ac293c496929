import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT, runCli, tempProject } from '../../helpers.ts'

interface PackageJson {
  scripts: Record<string, string>
  devDependencies: Record<string, string>
}

/**
 * Whether .gitignore lines ignore a file at the project root: git's rule for slash-less patterns (the last matching
 * line wins, "!" re-includes), with "*" as the only wildcard the scaffold uses.
 */
function ignored(gitignore: string, file: string): boolean {
  let result = false
  for (const line of gitignore.split('\n').map((l) => l.trim())) {
    if (line === '' || line.startsWith('#')) continue
    const negate = line.startsWith('!')
    const pattern = (negate ? line.slice(1) : line).replace(/\/$/, '')
    const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`)
    if (re.test(file)) result = !negate
  }
  return result
}

describe('sovra init (issue 11, item 7)', () => {
  const parent = tempProject({})
  const dir = join(parent, 'fresh-app')
  const ours = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson

  it('creates a project whose package.json has the dev tools tsc and vitest need, at sovra’s versions', async () => {
    const res = await runCli(['init', dir])
    expect(res.code).toBe(0)
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson
    // tsconfig.json names types: ["node"]: without @types/node, tsc fails on a fresh install.
    expect(JSON.parse(readFileSync(join(dir, 'tsconfig.json'), 'utf8')).compilerOptions.types).toContain('node')
    for (const tool of ['@types/node', 'typescript', 'vitest'])
      expect(pkg.devDependencies[tool], tool).toBe(ours.devDependencies[tool])
    expect(pkg.scripts['test']).toBe('tsc --noEmit && vitest run')
  })

  it('ignores .dev.vars and .dev.vars.<env> but keeps .dev.vars.example', () => {
    const gitignore = readFileSync(join(dir, '.gitignore'), 'utf8')
    expect(ignored(gitignore, '.dev.vars')).toBe(true)
    expect(ignored(gitignore, '.dev.vars.production')).toBe(true)
    expect(ignored(gitignore, '.dev.vars.example')).toBe(false)
    expect(ignored(gitignore, 'node_modules')).toBe(true)
    expect(ignored(gitignore, '.sovra')).toBe(true)
  })

  it('documents the state folder and --state in the config, which checks clean', async () => {
    const toml = readFileSync(join(dir, 'wrangler-compat.toml'), 'utf8')
    expect(toml).toMatch(/^# State: .*\.sovra\/state/m)
    expect(toml).toMatch(/^# .*--state DIR/m)
    expect(toml).toMatch(/^# \[database\]\n# url = /m)
    const check = await runCli(['config', 'check', '--config', join(dir, 'wrangler-compat.toml')])
    expect(check.out).toMatch(/ok \(1 function: hello; 0 warnings\)/)
    expect(check.code).toBe(0)
  })

  it('typechecks with tsc --noEmit when its devDependencies are installed (offline: linked from this checkout)', () => {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson
    // What `npm install` would put there: sovra itself, and each listed dev tool (this checkout has the same versions).
    for (const name of Object.keys(pkg.devDependencies)) {
      const link = join(dir, 'node_modules', name)
      mkdirSync(dirname(link), { recursive: true })
      symlinkSync(name === 'sovra' ? ROOT : join(ROOT, 'node_modules', name), link)
    }
    const tsc = spawnSync(process.execPath, [join(dir, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', dir], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 170_000,
    })
    expect(tsc.stdout + tsc.stderr).toBe('')
    expect(tsc.status).toBe(0)
  }, 180_000)
})
