import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { bundleFunction, KEEP_OLD_BUNDLES, writeBundle } from '../../../runtime/isolate/bundle.ts'
import { tempProject } from '../../helpers.ts'

describe('bundleFunction', () => {
  it('bundles a function that imports sovra into one ESM file named by its digest', async () => {
    const dir = tempProject({
      'f.ts':
        "import { defineFunction } from 'sovra'\nimport { helper } from './lib.ts'\nexport default defineFunction({ fetch: () => new Response(helper()) })\n",
      'lib.ts': "export const helper = () => 'from lib'\n",
    })
    const b = await bundleFunction({ name: 'f', main: join(dir, 'f.ts') }, join(dir, 'out'))
    const code = readFileSync(b.path)
    expect(b.sha256).toBe(createHash('sha256').update(code).digest('hex'))
    expect(b.path).toBe(join(dir, 'out', `f.${b.sha256.slice(0, 12)}.mjs`))
    expect(code.toString()).toContain('from lib')
    expect(code.toString()).not.toMatch(/^import /m)
    const mod = (await import(b.path)) as { default: { fetch(): Response } }
    expect(await mod.default.fetch().text()).toBe('from lib')
  })

  it('is deterministic: the same sources give the same digest', async () => {
    const dir = tempProject({ 'f.js': 'export default { fetch: () => new Response("x") }\n' })
    const a = await bundleFunction({ name: 'f', main: join(dir, 'f.js') }, join(dir, 'a'))
    const b = await bundleFunction({ name: 'f', main: join(dir, 'f.js') }, join(dir, 'b'))
    expect(a.sha256).toBe(b.sha256)
  })

  it('keeps the current bundle and the last few of each function, nothing of others touched', async () => {
    const dir = tempProject({})
    const out = join(dir, 'out')
    writeBundle('other', new TextEncoder().encode('o'), out)
    let last = ''
    for (let i = 0; i < KEEP_OLD_BUNDLES + 3; i++) {
      last = writeBundle('fn', new TextEncoder().encode(`v${i}`), out).path
      await new Promise((r) => setTimeout(r, 5))
    }
    const files = readdirSync(out)
    expect(files.filter((f) => f.startsWith('fn.'))).toHaveLength(KEEP_OLD_BUNDLES + 1)
    expect(files).toContain(last.split('/').at(-1))
    expect(files.filter((f) => f.startsWith('other.'))).toHaveLength(1)
  })
})
