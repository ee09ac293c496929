import { exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet } from 'jose'

/** A test identity provider: a real ES256 key pair, its JWKS, and a signer with the usual claims. */
export interface TestIssuer {
  issuer: string
  audience: string
  jwks: JSONWebKeySet
  /** Another key pair's private key: tokens signed with it are forgeries for `jwks`. */
  otherKey: CryptoKey
  sign(
    claims: Record<string, unknown>,
    opts?: { key?: CryptoKey; exp?: string | number; issuer?: string; audience?: string; kid?: string },
  ): Promise<string>
}

/**
 * Creates a {@link TestIssuer} with fresh keys (issuer `https://idp.bank.example`, audience `sovra`).
 */
export async function createTestIssuer(): Promise<TestIssuer> {
  const issuer = 'https://idp.bank.example'
  const audience = 'sovra'
  const { publicKey, privateKey } = await generateKeyPair('ES256')
  const other = await generateKeyPair('ES256')
  return {
    issuer,
    audience,
    jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] },
    otherKey: other.privateKey,
    sign: (claims, opts = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: opts.kid ?? 'k1' })
        .setIssuer(opts.issuer ?? issuer)
        .setAudience(opts.audience ?? audience)
        .setIssuedAt()
        .setExpirationTime(opts.exp ?? '5m')
        .sign(opts.key ?? privateKey),
  }
}
