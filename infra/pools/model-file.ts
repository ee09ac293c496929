import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, dirname, extname, relative, resolve, sep } from 'node:path'

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

async function fileSize(abs: string, what: string): Promise<number> {
  const st = await stat(abs).catch((e: NodeJS.ErrnoException) => {
    throw new SovraError('ERR_CONFIG', `${what} ${JSON.stringify(abs)} cannot be read: ${e.code ?? e.message}`)
  })
  if (st.isDirectory())
    throw new SovraError(
      'ERR_CONFIG',
      `${what} ${JSON.stringify(abs)} is a directory; expected a file (only onnx pools load a model folder)`,
    )
  if (!st.isFile()) throw new SovraError('ERR_CONFIG', `${what} ${JSON.stringify(abs)} is not a regular file`)
  return st.size
}

/**
 * Identifies a model file: its absolute path, size and sha256. Throws ERR_CONFIG naming the path when the file is
 * missing, a directory or not a regular file.
 * @param path the model file (relative paths resolve against the working directory)
 */
export async function describeModelFile(path: string): Promise<ModelInfo> {
  const abs = resolve(path)
  const bytes = await fileSize(abs, 'model file')
  // HF layouts name the file model.onnx inside a folder named after the model (`e5-small/onnx/model.onnx`).
  let name = basename(abs, extname(abs))
  if (name === 'model') {
    const parent = basename(dirname(abs))
    name = parent === 'onnx' ? basename(dirname(dirname(abs))) : parent
  }
  return { path: abs, bytes, sha256: await sha256File(abs), name }
}

/**
 * Identifies a model folder by the files loaded from it. The digest is the sha256 of the `sha256sum` listing of
 * those files, sorted by path: one line `<hex sha256>  <path relative to the folder, / separated>\n` per file, so
 * `cd FOLDER && sha256sum model.onnx tokenizer.json config.json | LC_ALL=C sort -k2 | sha256sum` gives the same hex.
 * Any change to a file that is read, or a file added to or dropped from what is read, changes it.
 * @param folder the model folder
 * @param files the files read from it (absolute, or relative to the working directory)
 */
export async function describeModelFolder(folder: string, files: readonly string[]): Promise<ModelInfo> {
  const abs = resolve(folder)
  const entries = await Promise.all(
    files.map(async (f) => {
      const file = resolve(f)
      const bytes = await fileSize(file, `file of model folder ${JSON.stringify(abs)}:`)
      return { path: relative(abs, file).split(sep).join('/'), bytes, sha256: await sha256File(file) }
    }),
  )
  // Code-unit order, as `LC_ALL=C sort` orders the listing.
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  const listing = entries.map((e) => `${e.sha256}  ${e.path}\n`).join('')
  return {
    path: abs,
    bytes: entries.reduce((n, e) => n + e.bytes, 0),
    sha256: createHash('sha256').update(listing).digest('hex'),
    name: basename(abs),
    files: entries,
  }
}
