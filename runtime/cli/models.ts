import { resolve } from 'node:path'

import { SovraError } from '../core/errors.ts'
import { materializeTinyModel } from '../../infra/pools/load-engine.ts'
import { describeModelFile } from '../../infra/pools/model-file.ts'
import { parseCommandArgs } from './args.ts'
import type { Command } from './command.ts'

const USAGE = 'sovra models make-tiny [--out DIR]'
const OPTIONS = { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const

/** `sovra models make-tiny`: writes the demo GGUF llama and ONNX embedding/classifier models, with their sha256. */
export const modelsCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const [sub, ...rest] = args
    const { values } = parseCommandArgs(rest, OPTIONS, USAGE)
    if (values.help === true) return io.out(USAGE), 0
    if (sub !== 'make-tiny') throw new SovraError('ERR_USAGE', `unknown subcommand ${JSON.stringify(sub ?? '')}; valid: make-tiny\nusage: ${USAGE}`)
    const out = resolve(values.out ?? '.sovra/state/models')
    for (const ref of ['tiny:llama', 'tiny:embed', 'tiny:classify']) {
      const path = await materializeTinyModel(ref, out)
      const info = await describeModelFile(path)
      io.out(`${ref.padEnd(14)} ${path}  ${info.bytes} bytes  sha256:${info.sha256}`)
    }
    return 0
  },
}
