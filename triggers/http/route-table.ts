import { SovraError } from '../../runtime/core/errors.ts'

/** A route pattern as wrangler writes it: a string or a `{ pattern }` table. */
export type RouteInput = string | { pattern: string }

/**
 * Normalises a route to a path pattern: `/v1/echo` (exact) or `/v1/items/*` (prefix). A wrangler pattern with a
 * host (`example.com/api/*`) keeps its path: the embedded host serves one origin. `*` may only end a pattern,
 * as on Cloudflare.
 * @param input the route from config
 * @returns the path pattern, and whether a host part was dropped
 */
export function normalizeRoute(input: RouteInput): { pattern: string; droppedHost: string | undefined } {
  const raw = typeof input === 'string' ? input : input.pattern
  let pattern = raw.trim()
  let droppedHost: string | undefined
  if (!pattern.startsWith('/')) {
    const slash = pattern.indexOf('/')
    if (slash <= 0) {
      throw new SovraError(
        'ERR_CONFIG',
        `invalid route ${JSON.stringify(raw)}: expected a path such as "/v1/echo" or "/v1/items/*"`,
      )
    }
    droppedHost = pattern.slice(0, slash)
    pattern = pattern.slice(slash)
  }
  if (/[?#\s]/.test(pattern)) {
    throw new SovraError(
      'ERR_CONFIG',
      `invalid route ${JSON.stringify(raw)}: a route is a path without query, fragment or spaces`,
    )
  }
  const star = pattern.indexOf('*')
  if (star >= 0 && star !== pattern.length - 1) {
    throw new SovraError(
      'ERR_CONFIG',
      `invalid route ${JSON.stringify(raw)}: "*" may only end a route, e.g. "/v1/items/*"`,
    )
  }
  return { pattern, droppedHost }
}

/** A matched route. */
export interface RouteMatch<T> {
  target: T
  pattern: string
}

/**
 * Maps request paths to targets. Method-agnostic; the most specific route wins: an exact route beats any
 * wildcard, and a longer wildcard prefix beats a shorter one.
 *
 * @example
 * const table = new RouteTable([{ pattern: '/v1/items/*', target: 'items' }, { pattern: '/v1/items/special', target: 'special' }])
 * table.match('/v1/items/special')?.target // 'special'
 */
export class RouteTable<T> {
  readonly #exact = new Map<string, RouteMatch<T>>()
  readonly #prefixes: Array<{ prefix: string; match: RouteMatch<T> }> = []

  /**
   * @param routes normalised patterns and their targets; the same pattern twice is an error naming both targets
   * @param describe names a target in error messages
   */
  constructor(routes: ReadonlyArray<{ pattern: string; target: T }>, describe: (t: T) => string = String) {
    const seen = new Map<string, T>()
    for (const { pattern, target } of routes) {
      const other = seen.get(pattern)
      if (other !== undefined) {
        throw new SovraError(
          'ERR_CONFIG',
          `route ${JSON.stringify(pattern)} is claimed by both ${describe(other)} and ${describe(target)}; a route belongs to one function`,
        )
      }
      seen.set(pattern, target)
      const match = { target, pattern }
      if (pattern.endsWith('*')) this.#prefixes.push({ prefix: pattern.slice(0, -1), match })
      else this.#exact.set(pattern, match)
    }
    this.#prefixes.sort((a, b) => b.prefix.length - a.prefix.length)
  }

  /**
   * Finds the route for a path, or undefined.
   * @param pathname the request's URL path (not decoded)
   */
  match(pathname: string): RouteMatch<T> | undefined {
    const exact = this.#exact.get(pathname)
    if (exact !== undefined) return exact
    for (const p of this.#prefixes) if (pathname.startsWith(p.prefix)) return p.match
    return undefined
  }
}
