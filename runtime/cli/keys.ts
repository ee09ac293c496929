import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { generateKey } from '../../infra/registry/keys.ts'
import { addToTrustFile } from '../../infra/registry/trust.ts'
import { ARTIFACT_KINDS } from '../../infra/registry/manifest.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Command } from './command.ts'
import { audit, keysDir, loadTrust, trustFile } from '../../infra/deploy/project-state.ts'

const USAGE = 'sovra keys gen [--name NAME] [--kinds model,bundle,...] | sovra keys ls'
const OPTIONS = { ...COMMON_OPTIONS, name: { type: 'string' }, kinds: { type: 'string' } } as const

/** `sovra keys gen`: an ed25519 signing key under `.sovra/keys` (0600), added to the local trust list; `keys ls`. */
export const keysCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const [sub, ...rest] = args
    const { values } = parseCommandArgs(rest, OPTIONS, USAGE)
    if (values.help === true) return (io.out(USAGE), 0)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    if (sub === 'ls') {
      for (const k of loadTrust(project).keys)
        io.out(`${k.keyid}  ${k.name.padEnd(16)} ${k.kinds.join(',')}  ${k.publicKey}`)
      return 0
    }
    if (sub !== 'gen')
      throw new SovraError(
        'ERR_USAGE',
        `unknown subcommand ${JSON.stringify(sub ?? '')}; valid: gen, ls\nusage: ${USAGE}`,
      )
    const kinds = values.kinds?.split(',').map((k) => k.trim()) ?? [...ARTIFACT_KINDS]
    const bad = kinds.filter((k) => !(ARTIFACT_KINDS as readonly string[]).includes(k))
    if (bad.length > 0)
      throw new SovraError('ERR_USAGE', `--kinds: unknown ${bad.join(', ')}; valid: ${ARTIFACT_KINDS.join(', ')}`)
    const name = values.name ?? 'default'
    const key = generateKey(keysDir(project), name)
    addToTrustFile(trustFile(project), { name, public_key: key.publicKey, kinds })
    await audit(project, values.state, {
      action: 'key.create',
      subject: `key:${key.keyid}`,
      after: key.publicKey,
      details: { name, kinds },
    })
    io.out(
      `key ${name} (${key.keyid}) written to ${keysDir(project)}/${name}.key (mode 0600); trusted locally for ${kinds.join(', ')}`,
    )
    io.out(`public key (add to [[trust]] where this key must be accepted): ${key.publicKey}`)
    return 0
  },
}
