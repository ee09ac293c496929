import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, dirname, extname, resolve } from 'node:path'

import { SovraError } from '../../runtime/core/errors.ts'
import type { ModelInfo } from './engine.ts'

/**
 * Hashes a file with sha256, streamed (a model file can be many GB).
 * @param path the file
 */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/**
 * Identifies a model file: its absolute path, size and sha256. Throws ERR_CONFIG naming the path when the file is
 * missing or not a regular file.
 * @param path the model file (relative paths resolve against the working directory)
 */
export async function describeModelFile(path: string): Promise<ModelInfo> {
  const abs = resolve(path)
  const st = await stat(abs).catch((e: NodeJS.ErrnoException) => {
    throw new SovraError('ERR_CONFIG', `model file ${JSON.stringify(abs)} cannot be read: ${e.code ?? e.message}`)
  })
  if (!st.isFile()) throw new SovraError('ERR_CONFIG', `model ${JSON.stringify(abs)} is not a file`)
  // HF layouts name the file model.onnx inside a folder named after the model (`e5-small/onnx/model.onnx`).
  let name = basename(abs, extname(abs))
  if (name === 'model') {
    const parent = basename(dirname(abs))
    name = parent === 'onnx' ? basename(dirname(dirname(abs))) : parent
  }
  return { path: abs, bytes: st.size, sha256: await sha256File(abs), name }
}
