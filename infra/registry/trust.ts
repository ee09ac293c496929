import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import type { KeyObject } from 'node:crypto'

import { SovraError } from '../../runtime/core/errors.ts'
import { keyIdOf, publicKeyFromBase64 } from './keys.ts'
import { ARTIFACT_KINDS, type ArtifactKind } from './manifest.ts'

/**
 * What a trusted key may sign: artifacts of a kind, and statements: `approve` (an approval of a change) and `audit`
 * (a checkpoint of the audit chain's head).
 */
export const TRUST_KINDS = [...ARTIFACT_KINDS, 'approve', 'audit'] as const
export type TrustKind = ArtifactKind | 'approve' | 'audit'

/** One trusted public key and what it may sign. */
export interface TrustedKey {
  name: string
  keyid: string
  publicKey: string
  kinds: readonly TrustKind[]
}

/** Which keys are accepted for which artifact kinds: `[[trust]]` in the config plus the local trust file. */
export class TrustPolicy {
  /** @param keys the trusted keys */
  constructor(readonly keys: readonly TrustedKey[]) {}

  /**
   * Key id -> public key, for one kind.
   * @param kind the artifact kind, or `approve` / `audit`
   */
  forKind(kind: TrustKind): Map<string, KeyObject> {
    return new Map(
      this.keys.filter((k) => k.kinds.includes(kind)).map((k) => [k.keyid, publicKeyFromBase64(k.publicKey)]),
    )
  }

  /**
   * The name of a key id, for reports.
   * @param keyid a key id
   */
  nameOf(keyid: string): string {
    return this.keys.find((k) => k.keyid === keyid)?.name ?? keyid
  }
}

/** A trust entry as written in config or the local trust file. */
export interface TrustEntry {
  name: string
  public_key: string
  kinds?: string[] | undefined
}

/**
 * Builds the trust policy from entries, validating keys and kinds (ERR_CONFIG naming the entry).
 * @param entries config `[[trust]]` entries and the local trust file's
 */
export function trustPolicy(entries: readonly TrustEntry[]): TrustPolicy {
  return new TrustPolicy(
    entries.map((e, i) => {
      const kinds = (e.kinds ?? [...TRUST_KINDS]) as TrustKind[]
      const bad = kinds.filter((k) => !(TRUST_KINDS as readonly string[]).includes(k))
      if (bad.length > 0)
        throw new SovraError(
          'ERR_CONFIG',
          `trust[${i}] (${e.name}): unknown kinds ${bad.join(', ')}; valid: ${TRUST_KINDS.join(', ')}`,
        )
      publicKeyFromBase64(e.public_key)
      return { name: e.name, keyid: keyIdOf(Buffer.from(e.public_key, 'base64')), publicKey: e.public_key, kinds }
    }),
  )
}

/**
 * Reads the local trust file (`.sovra/keys/trust.json`), if any.
 * @param path the file
 */
export function readTrustFile(path: string): TrustEntry[] {
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as TrustEntry[]) : []
}

/**
 * Adds a key to the local trust file (idempotent by public key).
 * @param path the file
 * @param entry the key
 */
export function addToTrustFile(path: string, entry: TrustEntry): void {
  const entries = readTrustFile(path).filter((e) => e.public_key !== entry.public_key)
  entries.push(entry)
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, `${JSON.stringify(entries, null, 2)}\n`)
}
