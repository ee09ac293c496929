/**
 * Tells whether a socket's remote address is loopback: 127.0.0.0/8, `::1`, or an IPv4-mapped `::ffff:127.x.y.z`
 * (what a dual-stack server reports for IPv4 clients). Unknown (undefined) is not loopback: fail closed.
 * @param address the remote address as Node reports it (`socket.remoteAddress`)
 */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false
  const a = address.toLowerCase()
  if (a === '::1' || a === '0:0:0:0:0:0:0:1') return true
  const v4 = a.startsWith('::ffff:') ? a.slice('::ffff:'.length) : a
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v4)
  return m !== null && m.slice(1).every((o) => Number(o) <= 255)
}
