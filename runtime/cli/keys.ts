import { rmSync } from 'node:fs'
import { join } from 'node:path'

import { loadConfig } from '../config/load.ts'
import { SovraError } from '../core/errors.ts'
import { generateKey } from '../../infra/registry/keys.ts'
import { addToTrustFile } from '../../infra/registry/trust.ts'
import { TRUST_KINDS } from '../../infra/registry/trust.ts'
import { auditLog } from '../../infra/deploy/audit.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Command } from './command.ts'
import { actor, keysDir, loadTrust, trustFile, withStore } from '../../infra/deploy/project-state.ts'
import { forwardToHost } from './remote.ts'

/** Removes a key's files (its creation could not be audited). */
function removeKey(dir: string, name: string): void {
  for (const f of [`${name}.key`, `${name}.pub`]) rmSync(join(dir, f), { force: true })
}

const USAGE = 'sovra keys gen [--name NAME] [--kinds model,bundle,approve,...] [--url URL] | sovra keys ls'
const OPTIONS = {
  ...COMMON_OPTIONS,
  name: { type: 'string' },
  kinds: { type: 'string' },
  url: { type: 'string' },
} as const

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
    const kinds = values.kinds?.split(',').map((k) => k.trim()) ?? [...TRUST_KINDS]
    const bad = kinds.filter((k) => !(TRUST_KINDS as readonly string[]).includes(k))
    if (bad.length > 0)
      throw new SovraError('ERR_USAGE', `--kinds: unknown ${bad.join(', ')}; valid: ${TRUST_KINDS.join(', ')}`)
    const name = values.name ?? 'default'
    // A host on this state records the key's creation (it holds the audit log); a key must never exist unaudited.
    const forwarded = await forwardToHost('keys', args, io, { project, state: values.state, url: values.url })
    if (forwarded !== undefined) return forwarded
    // The store opens first: when it cannot (another process holds it), no key is written.
    const key = await withStore(project, values.state, async (db) => {
      const made = generateKey(keysDir(project), name)
      try {
        await auditLog(db).append({
          actor: actor(),
          action: 'key.create',
          subject: `key:${made.keyid}`,
          after: made.publicKey,
          details: { name, kinds },
        })
      } catch (error) {
        removeKey(keysDir(project), name)
        throw error
      }
      addToTrustFile(trustFile(project), { name, public_key: made.publicKey, kinds })
      return made
    })
    io.out(
      `key ${name} (${key.keyid}) written to ${keysDir(project)}/${name}.key (mode 0600); trusted locally for ${kinds.join(', ')}`,
    )
    io.out(`public key (add to [[trust]] where this key must be accepted): ${key.publicKey}`)
    return 0
  },
}
