import { SovraError } from './errors.ts'

/** S3's longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024
const encoder = new TextEncoder()

/**
 * Refuses keys S3 would refuse or that could escape a folder: empty, over 1024 UTF-8 bytes, starting with "/",
 * containing a ".." or "." path segment, NUL or other control characters.
 * @param key the object key
 */
export function validateKey(key: string): void {
  const bad = (why: string): never => {
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `invalid object key ${JSON.stringify(key.length > 80 ? `${key.slice(0, 77)}...` : key)}: ${why}`,
    )
  }
  if (typeof key !== 'string' || key.length === 0) bad('a key is a non-empty string')
  const bytes = encoder.encode(key).byteLength
  if (bytes > MAX_KEY_BYTES) bad(`${bytes} UTF-8 bytes; the limit is ${MAX_KEY_BYTES}`)
  if (key.startsWith('/')) bad('absolute paths are not keys; drop the leading "/"')
  if (key.split('/').some((segment) => segment === '..' || segment === '.'))
    bad('"." and ".." path segments are not allowed')
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(key)) bad('control characters are not allowed')
}

/**
 * Refuses bucket names S3 would refuse: 3-63 characters of lowercase letters, digits, "." and "-", starting and
 * ending with a letter or digit, not an IP address.
 * @param name the bucket name
 */
export function validateBucketName(name: string): void {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) || /^\d+\.\d+\.\d+\.\d+$/.test(name) || name.includes('..')) {
    throw new SovraError(
      'ERR_CONFIG',
      `invalid bucket name ${JSON.stringify(name)}: 3-63 characters of lowercase letters, digits, "." and "-", starting and ending with a letter or digit`,
    )
  }
}
