import { createHash } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { loadPoolEngine, probeModel } from '../../../infra/pools/load-engine.ts'
import { describeOnnxModel, onnxFiles } from '../../../infra/pools/onnx-files.ts'
import { createPoolApp } from '../../../infra/pools/pool-app.ts'
import { writeTinyEmbeddingModel } from '../../../infra/pools/tiny/tiny-onnx.ts'
import { captureLogger, HEAVY_HOOK_MS } from '../../helpers.ts'
import { poolConfig } from '../../support/pools.ts'
import { memoryReplica } from './fake-engine.ts'

// R6: a pool whose model is a folder (model.onnx + tokenizer.json + config.json, as the README documents).
let root: string
let folder: string

const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex')
/** The documented digest: sha256 of the `sha256sum` listing of the files read, sorted by path. */
async function listingDigest(dir: string, files: string[]): Promise<string> {
  const lines = await Promise.all(files.map(async (f) => `${sha256(await readFile(join(dir, f)))}  ${f}\n`))
  return sha256(lines.sort((a, b) => (a.slice(66) < b.slice(66) ? -1 : 1)).join(''))
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sovra-model-folder-'))
  folder = join(root, 'tiny-embed')
  await writeTinyEmbeddingModel(folder)
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

describe('onnx model folders', () => {
  it(
    'loads a folder model with the load probe on, remembering the probe by the folder digest',
    async () => {
      const state = join(root, 'state')
      const pool = poolConfig({ name: 'embed', engine: 'onnx', model: folder, tier: 'internal', threads: 1 })
      expect(pool.probe).toBe(true)
      const engine = await loadPoolEngine(pool, { stateDir: state })
      try {
        const digest = await listingDigest(folder, ['config.json', 'model.onnx', 'tokenizer.json'])
        expect(engine.model).toMatchObject({ path: folder, name: 'tiny-embed', sha256: digest })
        expect(engine.model.files?.map((f) => f.path)).toEqual(['config.json', 'model.onnx', 'tokenizer.json'])
        expect(engine.model.bytes).toBe(engine.model.files?.reduce((n, f) => n + f.bytes, 0))
        expect(await readdir(join(state, 'probed'))).toEqual([`onnx-${digest}`])
        const { vectors } = await engine.embed!(['hello'], AbortSignal.timeout(5000), 0)
        expect(vectors[0]).toHaveLength(64)
        // /healthz names the folder, its digest, and each file that went into it.
        const health = await createPoolApp(memoryReplica(pool, engine, captureLogger())).request('/healthz')
        expect(((await health.json()) as { model: unknown }).model).toEqual({
          name: 'tiny-embed',
          path: folder,
          sha256: digest,
          bytes: engine.model.bytes,
          files: engine.model.files,
        })
      } finally {
        await engine.close()
      }
    },
    HEAVY_HOOK_MS,
  )

  it('changes the digest when a file it reads changes, not when an unrelated file is added', async () => {
    const dir = join(root, 'edited')
    await writeTinyEmbeddingModel(dir)
    const before = (await describeOnnxModel(await onnxFiles(dir))).sha256
    await writeFile(join(dir, 'README.md'), 'notes')
    expect((await describeOnnxModel(await onnxFiles(dir))).sha256).toBe(before)
    const tok = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as Record<string, unknown>
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify({ ...tok, truncation: null }, null, 1))
    expect((await describeOnnxModel(await onnxFiles(dir))).sha256).not.toBe(before)
  })

  it('reads the HF layout (onnx/model.onnx with external weights) and names paths relative to the folder', async () => {
    const dir = join(root, 'hf')
    await writeTinyEmbeddingModel(join(dir, 'onnx'))
    // tokenizer.json and config.json sit at the top of an HF export; model.onnx_data holds external weights.
    for (const f of ['tokenizer.json', 'config.json'])
      await writeFile(join(dir, f), await readFile(join(dir, 'onnx', f)))
    await rm(join(dir, 'onnx', 'tokenizer.json'))
    await rm(join(dir, 'onnx', 'config.json'))
    await writeFile(join(dir, 'onnx', 'model.onnx_data'), 'weights')
    await writeFile(join(dir, 'onnx', 'model_quantized.onnx'), 'another export, not read')
    const info = await describeOnnxModel(await onnxFiles(dir))
    expect(info.files?.map((f) => f.path)).toEqual([
      'config.json',
      'onnx/model.onnx',
      'onnx/model.onnx_data',
      'tokenizer.json',
    ])
    expect(info.sha256).toBe(
      await listingDigest(dir, ['config.json', 'onnx/model.onnx', 'onnx/model.onnx_data', 'tokenizer.json']),
    )
  })

  it('refuses a folder for a llama pool, and an onnx folder without a model, with ERR_CONFIG naming the path', async () => {
    await expect(probeModel('llama', folder, join(root, 'probed'))).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringMatching(
        /tiny-embed" is a directory; expected a file \(only onnx pools load a model folder\)/,
      ),
    })
    const empty = await mkdtemp(join(root, 'empty-'))
    await expect(probeModel('onnx', empty, join(root, 'probed'))).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringMatching(/no ONNX model in directory .*; looked for .*model\.onnx, .*onnx\/model\.onnx/),
    })
  })
})
