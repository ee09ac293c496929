import { formatDiagnostic } from '../config/diagnostics.ts'
import { loadConfig } from '../config/load.ts'
import { configJsonSchema } from '../config/json-schema.ts'
import { SovraError } from '../core/errors.ts'
import { COMMON_OPTIONS, parseCommandArgs, writeFileFlag } from './args.ts'
import type { Command } from './command.ts'

const USAGE = 'sovra config check [--config FILE] [--env NAME] | sovra config schema [--out FILE]'

/** `sovra config check|schema`: diagnostics (exit 1 on errors), or the JSON Schema for editors. */
export const configCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const [sub, ...rest] = args
    if (sub === 'check') {
      const { values } = parseCommandArgs(rest, COMMON_OPTIONS, USAGE)
      if (values.help) return (io.out(USAGE), 0)
      // ConfigError (every diagnostic, exit 1) is printed by main.
      const { project, warnings } = loadConfig({ configPath: values.config, env: values.env })
      for (const d of warnings) io.err(formatDiagnostic(d))
      io.out(
        `${project.file}: ok (${project.functions.length} function${project.functions.length === 1 ? '' : 's'}: ${project.functions.map((f) => f.name).join(', ')}; ${warnings.length} warning${warnings.length === 1 ? '' : 's'})`,
      )
      for (const f of project.functions) {
        io.out(
          `  ${f.name}  tier=${f.tier}  routes=${f.routes.join(',') || '-'}  timeout=${f.limits.timeout_ms}ms  memory=${f.limits.memory_mb}MiB  secrets=${f.secrets.join(',') || '-'}`,
        )
      }
      return 0
    }
    if (sub === 'schema') {
      const { values } = parseCommandArgs(
        rest,
        { out: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' } },
        USAGE,
      )
      if (values.help) return (io.out(USAGE), 0)
      const text = `${JSON.stringify(configJsonSchema(), null, 2)}\n`
      if (values.out === undefined) io.out(text.trimEnd())
      else io.out(`wrote ${writeFileFlag(values.out, text, '--out')}`)
      return 0
    }
    throw new SovraError(
      'ERR_USAGE',
      `unknown subcommand ${JSON.stringify(sub ?? '')}; valid: check, schema\nusage: ${USAGE}`,
    )
  },
}
