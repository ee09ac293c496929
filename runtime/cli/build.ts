import { resolve } from 'node:path'
import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { bundleFunction } from '../isolate/bundle.ts'
import { buildAction } from '../../infra/targets/openwhisk/build.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Command } from './command.ts'

const USAGE = 'sovra build [--target openwhisk|local] [--config FILE] [--env NAME] [--out DIR]'

/**
 * `sovra build`: one OpenWhisk action per function (`dist/openwhisk/<fn>.js`, CommonJS for nodejs:20, entry `main`),
 * or with `--target local` the plain ESM bundles the embedded host runs (`dist/functions/`); prints path and sha256.
 */
export const buildCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const { values } = parseCommandArgs(
      args,
      { ...COMMON_OPTIONS, out: { type: 'string', short: 'o' }, target: { type: 'string', short: 't' } },
      USAGE,
    )
    if (values.help) return (io.out(USAGE), 0)
    const target = values.target ?? 'openwhisk'
    if (target !== 'openwhisk' && target !== 'local')
      throw new SovraError(
        'ERR_USAGE',
        `--target: expected openwhisk or local, received ${JSON.stringify(target)}\nusage: ${USAGE}`,
      )
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const outDir =
      values.out === undefined
        ? resolve(project.dir, 'dist', target === 'openwhisk' ? 'openwhisk' : 'functions')
        : resolve(values.out)
    for (const fn of project.functions) {
      const b = target === 'openwhisk' ? await buildAction(fn, outDir, project.dir) : await bundleFunction(fn, outDir)
      io.out(`${fn.name}  ${b.path}  sha256:${b.sha256}  ${b.bytes} bytes`)
    }
    return 0
  },
}
