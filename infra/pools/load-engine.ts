import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { SovraError } from '../../runtime/core/errors.ts'
import type { PoolConfig } from '../../runtime/config/pools.ts'
import type { Engine } from './engine.ts'
import { describeModelFile } from './model-file.ts'
import { describeOnnxModel, onnxFiles } from './onnx-files.ts'
import { writeTinyLlama } from './tiny/tiny-gguf.ts'
import { writeTinyClassifierModel, writeTinyEmbeddingModel } from './tiny/tiny-onnx.ts'
import type { Registry } from '../registry/registry.ts'
import type { TrustPolicy } from '../registry/trust.ts'

const SOVRA_BIN = fileURLToPath(new URL('../../bin/sovra.js', import.meta.url))

/** The built-in demo models, in the order `sovra models make-tiny` writes them. */
export const TINY_MODELS = ['tiny:llama', 'tiny:embed', 'tiny:classify'] as const

/**
 * The path a `tiny:` reference loads from under `<modelsDir>` (whether or not it was generated yet).
 * @param ref a `tiny:` reference
 * @param modelsDir where generated models live (the state folder's `models/`)
 */
export function tinyModelPath(ref: string, modelsDir: string): string {
  const name = ref.slice('tiny:'.length)
  if (!(TINY_MODELS as readonly string[]).includes(ref))
    throw new SovraError('ERR_CONFIG', `unknown tiny model ${JSON.stringify(ref)}; valid: ${TINY_MODELS.join(', ')}`)
  return name === 'llama' ? join(modelsDir, 'tiny-llama.gguf') : join(modelsDir, `tiny-${name}`, 'model.onnx')
}

/**
 * Makes the built-in demo models (`tiny:llama`, `tiny:embed`, `tiny:classify`) under `<modelsDir>` if missing and
 * returns the path to load. They are generated from code with fixed seeds, never downloaded. Safe to run from several
 * processes at once: each writes into a temp folder of its own, moves the result into place, and removes the temp
 * folder whatever happens.
 * @param ref a `tiny:` reference
 * @param modelsDir where generated models live (the state folder's `models/`)
 */
export async function materializeTinyModel(ref: string, modelsDir: string): Promise<string> {
  const target = tinyModelPath(ref, modelsDir)
  if (existsSync(target)) return target
  const name = ref.slice('tiny:'.length)
  // The final path is made by one rename, so a replica starting at the same time never sees a half-written model.
  await mkdir(modelsDir, { recursive: true })
  const tmp = await mkdtemp(join(modelsDir, `.tmp-${name}-`))
  try {
    // What gets renamed: the .gguf file, or the whole tiny-<name> folder (model.onnx, tokenizer.json, config.json).
    const [written, final] =
      name === 'llama' ? [join(tmp, 'tiny-llama.gguf'), target] : [join(tmp, `tiny-${name}`), dirname(target)]
    if (name === 'llama') await writeTinyLlama(written)
    else if (name === 'embed') await writeTinyEmbeddingModel(written)
    else await writeTinyClassifierModel(written)
    await rename(written, final).catch((e: unknown) => {
      // Another process got there first (a folder rename onto a non-empty folder fails): theirs is as good.
      if (!existsSync(target)) throw e
    })
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
  return target
}

/**
 * The model path a pool loads: its file, or the generated demo model for `tiny:` references.
 * @param pool the resolved pool
 * @param stateDir the project's state folder
 */
export async function modelPathOf(
  pool: PoolConfig,
  stateDir: string,
  registry?: { registry: Registry; trust: TrustPolicy },
): Promise<string> {
  if (pool.model.startsWith('registry:')) {
    if (registry === undefined)
      throw new SovraError(
        'ERR_CONFIG',
        `pool ${JSON.stringify(pool.name)}: model ${pool.model} is a registry reference, but this process has no registry`,
      )
    // Refuses unsigned, untrusted or tampered models (ERR_SIGNATURE) before a byte reaches the engine.
    const verified = await registry.registry.verify(pool.model, 'model', registry.trust)
    const subject = verified.manifest.subjects[0]
    if (subject === undefined) throw new SovraError('ERR_SIGNATURE', `${pool.model}: the manifest has no subject`)
    const ext = subject.name.includes('.') ? subject.name.slice(subject.name.lastIndexOf('.')) : ''
    return registry.registry.materialize(
      subject.sha256,
      join(stateDir, 'models', 'registry', `${subject.sha256}${ext}`),
    )
  }
  return pool.model.startsWith('tiny:') ? materializeTinyModel(pool.model, join(stateDir, 'models')) : pool.model
}

/**
 * Loads a model in a child process first and reports how it ended, so a malformed file (a GGUF missing
 * `feed_forward_length` aborts the process in GGML_ASSERT) fails with an error instead of killing the caller.
 * A model that passed is remembered by its digest under `<cacheDir>` (a file's sha256; an onnx folder's digest
 * over the files read from it, as the engine reports it).
 * @param engine `llama` or `onnx`
 * @param path the model file, or an onnx model's folder
 * @param cacheDir where passed probes are remembered
 */
export async function probeModel(engine: 'llama' | 'onnx', path: string, cacheDir: string): Promise<void> {
  const model = engine === 'onnx' ? await describeOnnxModel(await onnxFiles(path)) : await describeModelFile(path)
  const digest = model.sha256
  const marker = join(cacheDir, `${engine}-${digest}`)
  if (existsSync(marker)) return
  const child = spawn(process.execPath, [SOVRA_BIN, 'pool', 'probe', '--engine', engine, '--model', path], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-2000)
  })
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once('exit', (c, s) => resolve([c, s])),
  )
  if (code !== 0) {
    const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`
    const tail = stderr.trim().split('\n').slice(-3).join(' | ')
    throw new SovraError(
      'ERR_CONFIG',
      `model ${model.files === undefined ? 'file' : 'folder'} ${JSON.stringify(path)} (sha256 ${digest.slice(0, 12)}) failed the load probe in a child process: it ${how}${tail ? `: ${tail}` : ''}`,
    )
  }
  await mkdir(cacheDir, { recursive: true })
  await writeFile(marker, new Date().toISOString())
}

/** What loading an engine needs besides the pool. */
export interface LoadEngineOptions {
  stateDir: string
  /** The api key of an external provider, looked up from `api_key_secret`. */
  secret?: (name: string) => string | undefined
  /** Override the pool's `probe` setting (the probe subcommand itself never probes). */
  probe?: boolean
  /** The registry and trust policy, for `registry:` models. */
  registry?: { registry: Registry; trust: TrustPolicy }
}

/**
 * Loads a pool's engine: resolves the model, probes it in a child process (unless disabled or already passed),
 * then loads it here.
 * @param pool the resolved pool
 * @param options state folder and secrets
 */
export async function loadPoolEngine(pool: PoolConfig, options: LoadEngineOptions): Promise<Engine> {
  if (pool.engine === 'external') {
    const { createExternalEngine } = await import('./engines/external.ts')
    const apiKey = pool.apiKeySecret === undefined ? undefined : options.secret?.(pool.apiKeySecret)
    return createExternalEngine({
      url: pool.url ?? '',
      slots: pool.slots,
      ...(apiKey === undefined ? {} : { apiKey }),
      ...(pool.remoteModel === undefined ? {} : { remoteModel: pool.remoteModel }),
    })
  }
  const modelPath = await modelPathOf(pool, options.stateDir, options.registry)
  if (options.probe ?? pool.probe) await probeModel(pool.engine, modelPath, join(options.stateDir, 'probed'))
  if (pool.engine === 'llama') {
    const { loadLlamaEngine } = await import('./engines/llama.ts')
    return loadLlamaEngine({
      modelPath,
      threads: pool.threads,
      slots: pool.slots,
      gpu: pool.gpu,
      reservedSlots: pool.slots - pool.batchSlots,
      ...(pool.gpuLayers === undefined ? {} : { gpuLayers: pool.gpuLayers }),
      ...(pool.contextSize === undefined ? {} : { contextSize: pool.contextSize }),
    })
  }
  const { loadOnnxEngine } = await import('./engines/onnx.ts')
  return loadOnnxEngine({ modelPath, threads: pool.threads, slots: pool.slots })
}
