import { SovraError } from './errors.ts'

/** The default sensitivity tiers, lowest first. A project may declare its own ordered list in `[tiers]`. */
export const DEFAULT_TIERS = ['public', 'internal', 'confidential', 'restricted'] as const

/** A sensitivity tier name. */
export type Tier = string

/**
 * An ordered list of sensitivity tiers, with comparisons. Tiers only ever compare within one list.
 *
 * @example
 * const tiers = new TierOrder()
 * tiers.allows('confidential', 'internal') // true: a confidential pool may serve internal data
 */
export class TierOrder {
  readonly names: readonly string[]

  /** @param names tier names, lowest first; at least one, no duplicates */
  constructor(names: readonly string[] = DEFAULT_TIERS) {
    if (names.length === 0) throw new SovraError('ERR_CONFIG', 'tiers: expected at least one tier name, received []')
    const seen = new Set<string>()
    for (const n of names) {
      if (seen.has(n))
        throw new SovraError('ERR_CONFIG', `tiers: duplicate tier ${JSON.stringify(n)} in ${JSON.stringify(names)}`)
      seen.add(n)
    }
    this.names = [...names]
  }

  /**
   * The rank of a tier (0 is the lowest); throws when the name is not in the list.
   * @param tier a tier name
   */
  rank(tier: Tier): number {
    const i = this.names.indexOf(tier)
    if (i < 0) {
      throw new SovraError(
        'ERR_CONFIG',
        `Unknown tier ${JSON.stringify(tier)}. Valid tiers are: ${this.names.join(', ')}`,
      )
    }
    return i
  }

  /**
   * True when something cleared for `clearance` may handle data of tier `tier`.
   * @param clearance the highest tier the handler is cleared for
   * @param tier the tier of the data
   */
  allows(clearance: Tier, tier: Tier): boolean {
    return this.rank(clearance) >= this.rank(tier)
  }

  /**
   * Throws ERR_TIER_DENIED, naming both tiers, unless `clearance` covers `tier`.
   * @param clearance the highest tier the handler is cleared for
   * @param tier the tier of the data
   * @param what who is refusing, for the message (e.g. `pool "qa"`)
   */
  assert(clearance: Tier, tier: Tier, what: string): void {
    if (!this.allows(clearance, tier)) {
      throw new SovraError(
        'ERR_TIER_DENIED',
        `${what} is cleared for tier "${clearance}" but the data is tier "${tier}"; it needs a clearance of "${tier}" or above (${this.names.join(' < ')})`,
      )
    }
  }
}
