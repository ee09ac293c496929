import { sign, verify, type KeyObject } from 'node:crypto'

import { SovraError } from '../../runtime/core/errors.ts'

/** A DSSE envelope (https://github.com/secure-systems-lab/dsse): the signed bytes and who signed them. */
export interface Envelope {
  payloadType: string
  /** base64 of the payload bytes. */
  payload: string
  signatures: Array<{ keyid: string; sig: string }>
}

/** The payload type of sovra's manifests. */
export const MANIFEST_TYPE = 'application/vnd.sovra.manifest+json'

/**
 * DSSE's pre-authentication encoding: what is actually signed, binding the payload type to the payload.
 * @param type the payload type
 * @param body the payload bytes
 */
export function pae(type: string, body: Buffer): Buffer {
  const t = Buffer.from(type, 'utf8')
  return Buffer.concat([Buffer.from(`DSSEv1 ${t.length} `), t, Buffer.from(` ${body.length} `), body])
}

/**
 * Signs a JSON payload into an envelope with ed25519.
 * @param payload the manifest
 * @param key the private key
 * @param keyid the signer's key id
 */
export function signEnvelope(payload: unknown, key: KeyObject, keyid: string): Envelope {
  const body = Buffer.from(JSON.stringify(payload), 'utf8')
  return {
    payloadType: MANIFEST_TYPE,
    payload: body.toString('base64'),
    signatures: [{ keyid, sig: sign(null, pae(MANIFEST_TYPE, body), key).toString('base64') }],
  }
}

/**
 * Verifies an envelope against trusted keys and returns its payload and the key that signed it. ERR_SIGNATURE when
 * no signature is by a trusted key (naming the key ids found) or a trusted key's signature does not verify.
 * @param envelope the envelope
 * @param trusted key id -> public key, for the artifact's kind
 * @param what the artifact, for messages
 */
export function openEnvelope(
  envelope: Envelope,
  trusted: ReadonlyMap<string, KeyObject>,
  what: string,
): { payload: unknown; keyid: string } {
  if (envelope.payloadType !== MANIFEST_TYPE)
    throw new SovraError(
      'ERR_SIGNATURE',
      `${what}: payload type ${JSON.stringify(envelope.payloadType)} is not ${MANIFEST_TYPE}`,
    )
  const body = Buffer.from(envelope.payload, 'base64')
  const known = envelope.signatures.filter((s) => trusted.has(s.keyid))
  if (known.length === 0) {
    throw new SovraError(
      'ERR_SIGNATURE',
      `${what}: signed by unknown key${envelope.signatures.length === 1 ? '' : 's'} ${envelope.signatures.map((s) => s.keyid).join(', ') || '(none)'}; trusted keys: ${[...trusted.keys()].join(', ') || '(none: add keys to [[trust]] or run sovra keys gen)'}`,
    )
  }
  for (const s of known) {
    if (
      verify(null, pae(envelope.payloadType, body), trusted.get(s.keyid) as KeyObject, Buffer.from(s.sig, 'base64'))
    ) {
      return { payload: JSON.parse(body.toString('utf8')) as unknown, keyid: s.keyid }
    }
  }
  throw new SovraError(
    'ERR_SIGNATURE',
    `${what}: the signature by key ${known.map((s) => s.keyid).join(', ')} does not verify: the manifest was changed after signing`,
  )
}
