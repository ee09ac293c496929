import { readFileSync } from 'node:fs'
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
} from 'jose'
import { SovraError } from '../core/errors.ts'

/** Verifies a compact JWT and answers its payload; throws ERR_UNAUTHENTICATED naming what was wrong. */
export type VerifyToken = (token: string) => Promise<JWTPayload>

/** Why a token was refused: `details.reason` of the 401 body, for clients and tests to match on. */
export type RefusalReason =
  | 'missing'
  | 'malformed'
  | 'signature'
  | 'unknown_key'
  | 'algorithm'
  | 'expired'
  | 'not_yet_valid'
  | 'issuer'
  | 'audience'
  | 'claims'
  | 'dev_principal'

const isUrl = (s: string): boolean => /^https?:\/\//i.test(s)

function readJwks(file: string): JSONWebKeySet {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new SovraError(
      'ERR_CONFIG',
      `cannot read the JWKS file ${file}: ${(e as Error).message}; [auth] jwks must name a JSON Web Key Set file or an https:// URL`,
      { cause: e },
    )
  }
  try {
    const set = JSON.parse(text) as JSONWebKeySet
    if (!Array.isArray(set.keys)) throw new Error('no "keys" array')
    return set
  } catch (e) {
    throw new SovraError(
      'ERR_CONFIG',
      `the JWKS file ${file} is not a JSON Web Key Set ({"keys":[...]}): ${(e as Error).message}`,
      { cause: e },
    )
  }
}

const refused = (reason: RefusalReason, message: string, cause: unknown): SovraError =>
  new SovraError('ERR_UNAUTHENTICATED', `token refused: ${message}`, { cause, details: { reason } })

const show = (v: unknown): string => (v === undefined ? 'none' : JSON.stringify(v))
const time = (s: unknown): string => (typeof s === 'number' ? new Date(s * 1000).toISOString() : show(s))

/**
 * Creates the JWT check of `[auth]`: signatures against a JWKS (a file read once, or an URL fetched and cached by
 * jose, refetched when an unknown `kid` shows up), then `exp`/`nbf`, issuer and audience. Each refusal says what
 * was wrong: forged signature, unknown key, expired (and when), wrong issuer or audience (expected vs received).
 * @param options the JWKS (absolute file path or http(s) URL), issuer and audience to require
 * @example
 * const verify = createJwtVerifier({ jwks: 'https://idp.bank.example/jwks.json', issuer: 'https://idp.bank.example', audience: 'sovra' })
 * const claims = await verify(token)
 */
export function createJwtVerifier(options: {
  jwks: string
  issuer?: string | undefined
  audience?: string | undefined
}): VerifyToken {
  const { jwks, issuer, audience } = options
  const keys = isUrl(jwks) ? createRemoteJWKSet(new URL(jwks)) : createLocalJWKSet(readJwks(jwks))
  const expect = { ...(issuer === undefined ? {} : { issuer }), ...(audience === undefined ? {} : { audience }) }
  return async (token) => {
    try {
      return (await jwtVerify(token, keys, expect)).payload
    } catch (e) {
      throw refusal(e, token, options)
    }
  }
}

function refusal(
  e: unknown,
  token: string,
  options: { jwks: string; issuer?: string | undefined; audience?: string | undefined },
): SovraError {
  const err = e as { code?: unknown; claim?: unknown; payload?: JWTPayload; message?: string }
  const payload = err.payload ?? {}
  switch (err.code) {
    case 'ERR_JWT_EXPIRED':
      return refused('expired', `expired at ${time(payload.exp)} ("exp"; now ${new Date().toISOString()})`, e)
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (err.claim === 'iss')
        return refused('issuer', `wrong issuer: expected ${show(options.issuer)}, received ${show(payload.iss)}`, e)
      if (err.claim === 'aud')
        return refused(
          'audience',
          `wrong audience: expected ${show(options.audience)}, received ${show(payload.aud)}`,
          e,
        )
      if (err.claim === 'nbf')
        return refused(
          'not_yet_valid',
          `not valid before ${time(payload.nbf)} ("nbf"; now ${new Date().toISOString()})`,
          e,
        )
      return refused('claims', `${err.message ?? 'a claim check failed'}`, e)
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return refused(
        'signature',
        "bad signature: it does not verify with the JWKS key (forged, altered, or signed by another issuer's key)",
        e,
      )
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return refused(
        'unknown_key',
        `no single key in the JWKS ${options.jwks} matches the token's header ${headerOf(token)}`,
        e,
      )
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return refused(
        'algorithm',
        `unsupported algorithm in the token's header ${headerOf(token)}: ${err.message ?? ''}`,
        e,
      )
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return refused('malformed', `not a signed JWT (header.payload.signature): ${err.message ?? ''}`, e)
    default:
      // Not the caller's fault: the identity provider's JWKS could not be fetched (timeout, network, bad document).
      return new SovraError(
        'ERR_UPSTREAM',
        `cannot check the token: reading the JWKS ${options.jwks} failed: ${err.message ?? String(e)}`,
        { cause: e },
      )
  }
}

function headerOf(token: string): string {
  try {
    const h = decodeProtectedHeader(token)
    return JSON.stringify({ alg: h.alg, kid: h.kid })
  } catch {
    return '(unreadable)'
  }
}
