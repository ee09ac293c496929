import { readdir, stat } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'

import { SovraError } from '../../runtime/core/errors.ts'
import type { ModelInfo } from './engine.ts'
import { describeModelFile, describeModelFolder } from './model-file.ts'

/** The files an ONNX model is loaded from. */
export interface OnnxFiles {
  /** The folder the pool named, or undefined when it named the .onnx file itself. */
  folder: string | undefined
  /** The .onnx graph. */
  model: string
  /** Weights stored outside the graph, next to it (`model.onnx_data`, `model.onnx.data`: exports over 2 GB). */
  data: string[]
  /** tokenizer.json, and where it was looked for. */
  tokenizer: { path: string | undefined; tried: string[] }
  /** config.json, when there is one. */
  config: string | undefined
}

const isFile = (p: string): Promise<boolean> =>
  stat(p).then(
    (s) => s.isFile(),
    () => false,
  )

/** Looks for a side file next to the model, then in its parent (HF exports keep onnx/model.onnx below it). */
async function sideFile(model: string, name: string): Promise<{ path: string | undefined; tried: string[] }> {
  const tried = [join(dirname(model), name), join(dirname(dirname(model)), name)]
  for (const p of tried) if (await isFile(p)) return { path: p, tried }
  return { path: undefined, tried }
}

/**
 * Finds the files of an ONNX model: the graph (the file itself, or `model.onnx` / `onnx/model.onnx` in a folder, the
 * HF Hub export layout), its external weights, and tokenizer.json and config.json from its folder or the parent.
 * Throws ERR_CONFIG naming the path when it does not exist or a folder holds no model.
 * @param modelPath the .onnx file or the model's folder (relative paths resolve against the working directory)
 */
export async function onnxFiles(modelPath: string): Promise<OnnxFiles> {
  const abs = resolve(modelPath)
  const st = await stat(abs).catch(() => undefined)
  if (st === undefined) throw new SovraError('ERR_CONFIG', `model path ${JSON.stringify(abs)} does not exist`)
  let model = abs
  if (st.isDirectory()) {
    const tried = [join(abs, 'model.onnx'), join(abs, 'onnx', 'model.onnx')]
    const found = (await Promise.all(tried.map(isFile))).indexOf(true)
    if (found < 0)
      throw new SovraError(
        'ERR_CONFIG',
        `no ONNX model in directory ${JSON.stringify(abs)}; looked for ${tried.join(', ')}`,
      )
    model = tried[found] as string
  }
  // External data is named after the graph by torch.onnx / optimum (`model.onnx_data`) or onnx's
  // convert_model_to_external_data examples (`model.onnx.data`).
  const name = basename(model)
  const siblings = await readdir(dirname(model)).catch(() => [] as string[])
  const data = siblings
    .filter((f) => f === `${name}_data` || f === `${name}.data`)
    .sort()
    .map((f) => join(dirname(model), f))
  const config = await sideFile(model, 'config.json')
  return {
    folder: st.isDirectory() ? abs : undefined,
    model,
    data,
    tokenizer: await sideFile(model, 'tokenizer.json'),
    config: config.path,
  }
}

/**
 * Identifies an ONNX model. A file is its own sha256. A folder is identified by every file the engine reads from it
 * (the graph, its external weights, tokenizer.json, config.json): see {@link describeModelFolder}; other files in the
 * folder (other exports, READMEs) do not change it.
 * @param files what {@link onnxFiles} found
 */
export async function describeOnnxModel(files: OnnxFiles): Promise<ModelInfo> {
  if (files.folder === undefined) return describeModelFile(files.model)
  const read = [files.model, ...files.data, files.tokenizer.path, files.config].filter(
    (f): f is string => f !== undefined,
  )
  return describeModelFolder(files.folder, read)
}
