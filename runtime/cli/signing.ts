import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { basename } from 'node:path'
import * as v from 'valibot'

import { loadConfig } from '../config/load.ts'
import { isSovraError, SovraError } from '../core/errors.ts'
import { openEnvelope, signEnvelope, type Envelope } from '../../infra/registry/dsse.ts'
import { loadKey } from '../../infra/registry/keys.ts'
import { ARTIFACT_KINDS, ManifestSchema, type ArtifactKind } from '../../infra/registry/manifest.ts'
import { sha256File } from '../../infra/pools/model-file.ts'
import { COMMON_OPTIONS, parseCommandArgs, readFileFlag } from './args.ts'
import type { Command } from './command.ts'
import { forwardToHost, withAbsolutePath } from './remote.ts'
import { actor, audit, keysDir, loadTrust, openRegistry } from '../../infra/deploy/project-state.ts'

const SIGN_USAGE = 'sovra sign <file> [--key NAME] [--kind bundle|model|prompt|eval|dataset] [--name N] [--version V]'
const VERIFY_USAGE = 'sovra verify <file | registry:NAME@sha256:...> [--kind model]'

function kindOf(value: string | undefined, fallback: ArtifactKind): ArtifactKind {
  const k = value ?? fallback
  if (!(ARTIFACT_KINDS as readonly string[]).includes(k))
    throw new SovraError(
      'ERR_USAGE',
      `--kind: expected one of ${ARTIFACT_KINDS.join(', ')}, received ${JSON.stringify(k)}`,
    )
  return k as ArtifactKind
}

/** `sovra sign <file>`: writes `<file>.dsse.json`, a signed manifest naming the file's sha256 and size. */
export const signCommand: Command = {
  usage: SIGN_USAGE,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(
      args,
      {
        ...COMMON_OPTIONS,
        key: { type: 'string' },
        kind: { type: 'string' },
        name: { type: 'string' },
        version: { type: 'string' },
        url: { type: 'string' },
      },
      SIGN_USAGE,
      1,
    )
    const file = positionals[0]
    if (values.help === true || file === undefined) return (io.out(SIGN_USAGE), file === undefined ? 2 : 0)
    readFileFlag(file, 'sign <file>') // a missing file or a folder is a usage error naming the path
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const forwarded = await forwardToHost('sign', withAbsolutePath(args, file), io, {
      project,
      state: values.state,
      url: values.url,
    })
    if (forwarded !== undefined) return forwarded
    const key = loadKey(keysDir(project), values.key ?? 'default')
    const sha256 = await sha256File(file)
    const manifest = v.parse(ManifestSchema, {
      schema: 'sovra.manifest/v1',
      kind: kindOf(values.kind, 'bundle'),
      name: (values.name ?? basename(file)).toLowerCase().replace(/[^a-z0-9._-]/g, '-'),
      version: values.version ?? sha256.slice(0, 12),
      subjects: [{ name: basename(file), sha256, size: readFileSync(file).byteLength }],
      created_by: actor(),
      created_at: new Date().toISOString(),
      lineage: [],
    })
    writeFileSync(
      `${file}.dsse.json`,
      `${JSON.stringify(signEnvelope(manifest, key.privateKey, key.keyid), null, 2)}\n`,
    )
    await audit(project, values.state, {
      action: 'artifact.sign',
      subject: `${manifest.kind}:${manifest.name}`,
      after: `sha256:${sha256}`,
      details: { keyid: key.keyid, file: basename(file) },
    })
    io.out(`signed ${file} (sha256:${sha256}) with ${key.name} (${key.keyid}) -> ${file}.dsse.json`)
    return 0
  },
}

/** `sovra verify <file|ref>`: exit 0 when signed by a trusted key and every digest matches, 1 with the reason. */
export const verifyCommand: Command = {
  usage: VERIFY_USAGE,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(
      args,
      { ...COMMON_OPTIONS, kind: { type: 'string' }, url: { type: 'string' } },
      VERIFY_USAGE,
      1,
    )
    const target = positionals[0]
    if (values.help === true || target === undefined) return (io.out(VERIFY_USAGE), target === undefined ? 2 : 0)
    const { project } = loadConfig({ configPath: values.config, env: values.env })
    const forwarded = await forwardToHost(
      'verify',
      target.startsWith('registry:') ? args : withAbsolutePath(args, target),
      io,
      { project, state: values.state, url: values.url },
    )
    if (forwarded !== undefined) return forwarded
    const trust = loadTrust(project)
    try {
      if (target.startsWith('registry:')) {
        const r = await openRegistry(project, values.state).verify(target, kindOf(values.kind, 'model'), trust)
        io.out(
          `valid: ${r.manifest.kind} ${r.manifest.name}@${r.manifest.version} signed by ${r.signer} (${r.keyid}); ${r.manifest.subjects.map((s) => `${s.name} sha256:${s.sha256}`).join(', ')}`,
        )
        return 0
      }
      const sigFile = `${target}.dsse.json`
      if (!existsSync(sigFile)) throw new SovraError('ERR_SIGNATURE', `${target} is unsigned: no ${sigFile}`)
      const envelope = JSON.parse(readFileSync(sigFile, 'utf8')) as Envelope
      const claimed = v.parse(ManifestSchema, JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')))
      const { payload, keyid } = openEnvelope(envelope, trust.forKind(claimed.kind), `${claimed.kind} ${target}`)
      const manifest = v.parse(ManifestSchema, payload)
      const actual = await sha256File(target)
      const subject = manifest.subjects[0]
      if (subject === undefined || subject.sha256 !== actual)
        throw new SovraError(
          'ERR_SIGNATURE',
          `${target} was changed after signing: the manifest says sha256 ${subject?.sha256}, the file hashes to ${actual}`,
        )
      io.out(`valid: ${target} sha256:${actual} signed by ${trust.nameOf(keyid)} (${keyid})`)
      return 0
    } catch (e) {
      if (!isSovraError(e) || e.code !== 'ERR_SIGNATURE') throw e
      await audit(project, values.state, { action: 'signature.refused', subject: target, reason: e.message }).catch(
        () => undefined,
      )
      io.err(`refused: ${e.message}`)
      return 1
    }
  },
}
