import { resolve } from 'node:path'

import { loadConfig } from '../config/load.ts'
import { isSovraError, SovraError } from '../core/errors.ts'
import { materializeTinyModel } from '../../infra/pools/load-engine.ts'
import { describeModelFile } from '../../infra/pools/model-file.ts'
import { loadKey } from '../../infra/registry/keys.ts'
import { COMMON_OPTIONS, parseCommandArgs } from './args.ts'
import type { Command } from './command.ts'
import { forwardToHost, withAbsolutePath } from './remote.ts'
import { actor, audit, keysDir, loadTrust, openRegistry } from '../../infra/deploy/project-state.ts'

const USAGE = `sovra models make-tiny [--out DIR]
       sovra models push <file> --name N [--version V] [--lineage ref,...] [--legal-basis B] [--retention R] [--key NAME]
       sovra models ls
       sovra models verify <registry:NAME@sha256:... | registry:NAME:alias>`
const OPTIONS = {
  ...COMMON_OPTIONS,
  url: { type: 'string' },
  out: { type: 'string' },
  name: { type: 'string' },
  version: { type: 'string' },
  lineage: { type: 'string' },
  'legal-basis': { type: 'string' },
  retention: { type: 'string' },
  key: { type: 'string' },
} as const

/** `sovra models`: demo models, and the model side of the signed registry (push, ls, verify with lineage). */
export const modelsCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const [sub, ...rest] = args
    const { values, positionals } = parseCommandArgs(rest, OPTIONS, USAGE, 1)
    if (values.help === true) return (io.out(USAGE), 0)
    if (sub === 'make-tiny') {
      const out = resolve(values.out ?? '.sovra/state/models')
      for (const ref of ['tiny:llama', 'tiny:embed', 'tiny:classify']) {
        const path = await materializeTinyModel(ref, out)
        const info = await describeModelFile(path)
        io.out(`${ref.padEnd(14)} ${path}  ${info.bytes} bytes  sha256:${info.sha256}`)
      }
      return 0
    }
    if (sub !== 'push' && sub !== 'ls' && sub !== 'verify')
      throw new SovraError(
        'ERR_USAGE',
        `unknown subcommand ${JSON.stringify(sub ?? '')}; valid: make-tiny, push, ls, verify\nusage: ${USAGE}`,
      )
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    // A host on this state runs it: the registry's pushes and refusals go into the audit log it holds.
    const forwarded = await forwardToHost('models', withAbsolutePath(args, positionals[0]), io, {
      project,
      state: values.state,
      url: values.url,
    })
    if (forwarded !== undefined) return forwarded
    const registry = openRegistry(project, values.state)
    if (sub === 'push') {
      const file = positionals[0]
      if (file === undefined || values.name === undefined)
        throw new SovraError('ERR_USAGE', `push needs a file and --name\nusage: ${USAGE}`)
      const lineage =
        values.lineage === undefined
          ? []
          : await Promise.all(
              values.lineage.split(',').map(async (ref) => {
                const r = ref.trim()
                if (/^sha256:[0-9a-f]{64}$/.test(r)) return r
                // A registry reference as lineage is resolved (and must verify) to its digest.
                const v = await registry
                  .verify(r, 'model', loadTrust(project))
                  .catch(() => registry.verify(r, 'dataset', loadTrust(project)))
                return `sha256:${v.manifest.subjects[0]?.sha256 ?? ''}`
              }),
            )
      const key = loadKey(keysDir(project), values.key ?? 'default')
      const pushed = await registry.push(
        resolve(file),
        {
          kind: 'model',
          name: values.name,
          version: values.version,
          createdBy: actor(),
          lineage,
          legalBasis: values['legal-basis'],
          retention: values.retention,
        },
        key,
      )
      await audit(project, values.state, {
        action: 'artifact.push',
        subject: `model:${values.name}`,
        after: pushed.ref.split('@')[1],
        details: { version: pushed.manifest.version, keyid: key.keyid, lineage },
      })
      io.out(pushed.ref)
      return 0
    }
    if (sub === 'ls') {
      const trust = loadTrust(project)
      for (const { manifest: m, signers } of await registry.list('model')) {
        const s = m.subjects[0]
        io.out(
          `registry:${m.name}@sha256:${s?.sha256}  ${m.version.padEnd(10)} ${String(s?.size ?? 0).padStart(12)} bytes  by ${m.created_by}  signed ${signers.map((k) => trust.nameOf(k)).join(',')}  ${m.created_at}${m.legal_basis ? `  legal_basis=${m.legal_basis}` : ''}${m.lineage.length ? `  lineage=${m.lineage.join(',')}` : ''}`,
        )
      }
      return 0
    }
    const ref = positionals[0]
    if (ref === undefined) throw new SovraError('ERR_USAGE', `verify needs a reference\nusage: ${USAGE}`)
    try {
      const r = await registry.verify(ref, 'model', loadTrust(project))
      const m = r.manifest
      io.out(`valid: model ${m.name}@${m.version} sha256:${m.subjects[0]?.sha256}`)
      io.out(`  signed by ${r.signer} (${r.keyid}), created by ${m.created_by} at ${m.created_at}`)
      io.out(
        `  lineage: ${m.lineage.length ? m.lineage.join(', ') : '(none)'}${m.legal_basis ? `; legal basis: ${m.legal_basis}` : ''}${m.retention ? `; retention: ${m.retention}` : ''}`,
      )
      return 0
    } catch (e) {
      if (!isSovraError(e) || (e.code !== 'ERR_SIGNATURE' && e.code !== 'ERR_NOT_FOUND')) throw e
      await audit(project, values.state, { action: 'signature.refused', subject: ref, reason: e.message }).catch(
        () => undefined,
      )
      io.err(`refused: ${e.message}`)
      return 1
    }
  },
}
