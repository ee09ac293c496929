/** How one function's traffic is split: a stable version, at most one canary with a weight, and pins. */
export interface RoutingState {
  stable: string
  canary?: { version: string; weight: number } | undefined
  /** A caller whose `attribute` (tenant, a header, a JWT claim) equals `value` always gets `version`. */
  pins: ReadonlyArray<{ attribute: string; value: string; version: string }>
}

/** Which version a request gets, and why. */
export interface Selection {
  version: string
  reason: 'pin' | 'canary' | 'stable'
}

/**
 * A request id's bucket in 0..9999: FNV-1a over its UTF-16 code units. The same id always lands in the same
 * bucket, so a caller retrying with its request id reaches the same version.
 * @param requestId the request id
 */
export function bucketOf(requestId: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < requestId.length; i++) {
    h ^= requestId.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  // A final avalanche: FNV's low bits are weak for short, similar ids.
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b) >>> 0
  h ^= h >>> 13
  return (h >>> 0) % 10_000
}

/**
 * Selects the version for one request: a matching pin wins; else the canary for the request ids whose bucket is
 * below its weight (weight 10 -> buckets 0..999); else stable. Triggers (crons, object events) pass no request id
 * and always get stable unless pinned.
 * @param state the function's routing state
 * @param request the request id (absent for triggers) and the caller's attributes
 */
export function selectVersion(
  state: RoutingState,
  request: { requestId?: string | undefined; attributes?: Readonly<Record<string, string | undefined>> },
): Selection {
  for (const pin of state.pins) {
    if (request.attributes?.[pin.attribute] === pin.value) return { version: pin.version, reason: 'pin' }
  }
  const c = state.canary
  if (
    c !== undefined &&
    c.weight > 0 &&
    request.requestId !== undefined &&
    bucketOf(request.requestId) < c.weight * 100
  ) {
    return { version: c.version, reason: 'canary' }
  }
  return { version: state.stable, reason: 'stable' }
}
