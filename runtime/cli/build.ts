import { resolve } from 'node:path'
import { loadConfig } from '../config/load.ts'
import { bundleFunction } from '../isolate/bundle.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Command } from './command.ts'

const USAGE = 'sovra build [--config FILE] [--env NAME] [--out DIR]'

/** `sovra build`: bundles every function into one ESM file each and prints its path and sha256. */
export const buildCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const { values } = parseCommandArgs(args, { ...COMMON_OPTIONS, out: { type: 'string', short: 'o' } }, USAGE)
    if (values.help) return io.out(USAGE), 0
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const outDir = values.out === undefined ? resolve(project.dir, 'dist', 'functions') : resolve(values.out)
    for (const fn of project.functions) {
      const b = await bundleFunction(fn, outDir)
      io.out(`${fn.name}  ${b.path}  sha256:${b.sha256}  ${b.bytes} bytes`)
    }
    return 0
  },
}
