import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { materializeTinyModel } from '../../../infra/pools/load-engine.ts'
import { runCli } from '../../helpers.ts'

let root: string
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sovra-tiny-'))
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

describe('materializeTinyModel', () => {
  it('sovra models make-tiny leaves the three models and no temp folders behind', async () => {
    const out = join(root, 'make-tiny')
    const res = await runCli(['models', 'make-tiny', '--out', out])
    expect(res.code).toBe(0)
    expect((await readdir(out)).sort()).toEqual(['tiny-classify', 'tiny-embed', 'tiny-llama.gguf'])
    expect((await readdir(join(out, 'tiny-embed'))).sort()).toEqual(['config.json', 'model.onnx', 'tokenizer.json'])
  }, 60_000)

  it('leaves one copy and no temp folders when several processes generate the same models at once', async () => {
    const out = join(root, 'racing')
    const refs = ['tiny:llama', 'tiny:embed', 'tiny:embed', 'tiny:llama', 'tiny:classify', 'tiny:classify']
    const paths = await Promise.all(refs.map((r) => materializeTinyModel(r, out)))
    expect(new Set(paths).size).toBe(3)
    expect((await readdir(out)).sort()).toEqual(['tiny-classify', 'tiny-embed', 'tiny-llama.gguf'])
  }, 60_000)

  it('refuses an unknown tiny model naming the valid ones', async () => {
    await expect(materializeTinyModel('tiny:bert', join(root, 'x'))).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: 'unknown tiny model "tiny:bert"; valid: tiny:llama, tiny:embed, tiny:classify',
    })
  })
})
