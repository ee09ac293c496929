import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { SovraError } from '../../runtime/core/errors.ts'

/** A signing key on disk. */
export interface SigningKey {
  name: string
  /** First 16 hex digits of the sha256 of the raw 32-byte public key. */
  keyid: string
  /** The raw public key, base64: what a trust policy lists. */
  publicKey: string
  privateKey: KeyObject
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/

/**
 * The key id of an ed25519 public key.
 * @param raw the 32 raw public key bytes
 */
export function keyIdOf(raw: Buffer): string {
  return createHash('sha256').update(raw).digest('hex').slice(0, 16)
}

function rawPublic(key: KeyObject): Buffer {
  return Buffer.from((key.export({ format: 'jwk' }) as { x: string }).x, 'base64url')
}

/**
 * Turns a base64 raw ed25519 public key (as trust policies list them) into a key object; ERR_CONFIG when malformed.
 * @param b64 the 32 bytes, base64
 */
export function publicKeyFromBase64(b64: string): KeyObject {
  const raw = Buffer.from(b64, 'base64')
  if (raw.length !== 32)
    throw new SovraError(
      'ERR_CONFIG',
      `trust: expected a base64 ed25519 public key (32 bytes), received ${raw.length} bytes from ${JSON.stringify(b64.slice(0, 12))}...`,
    )
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' })
}

/**
 * Generates an ed25519 key pair under `dir`: `<name>.key` (PKCS#8 PEM, mode 0600) and `<name>.pub`. Refuses to
 * overwrite an existing key (a lost private key cannot be recovered; a replaced one orphans its signatures).
 * @param dir the keys folder (`.sovra/keys`)
 * @param name the key's name
 */
export function generateKey(dir: string, name: string): SigningKey {
  if (!NAME.test(name))
    throw new SovraError(
      'ERR_USAGE',
      `key name: expected lowercase letters, digits, "-" or "_", received ${JSON.stringify(name)}`,
    )
  const priv = join(dir, `${name}.key`)
  if (existsSync(priv))
    throw new SovraError(
      'ERR_USAGE',
      `key ${JSON.stringify(name)} already exists at ${priv}; pick another --name (keys are never overwritten)`,
    )
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  writeFileSync(priv, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 })
  chmodSync(priv, 0o600)
  const raw = rawPublic(publicKey)
  writeFileSync(join(dir, `${name}.pub`), `${raw.toString('base64')}\n`)
  return { name, keyid: keyIdOf(raw), publicKey: raw.toString('base64'), privateKey }
}

/**
 * Loads a private key from `<dir>/<name>.key`.
 * @param dir the keys folder
 * @param name the key's name
 */
export function loadKey(dir: string, name: string): SigningKey {
  const priv = join(dir, `${name}.key`)
  if (!existsSync(priv))
    throw new SovraError(
      'ERR_USAGE',
      `no signing key ${JSON.stringify(name)} at ${priv}; create one with: sovra keys gen --name ${name}`,
    )
  const privateKey = createPrivateKey(readFileSync(priv))
  const raw = rawPublic(createPublicKey(privateKey))
  return { name, keyid: keyIdOf(raw), publicKey: raw.toString('base64'), privateKey }
}
