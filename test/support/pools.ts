import { resolvePools, type PoolConfig, type PoolEntry } from '../../runtime/config/pools.ts'
import { TierOrder } from '../../runtime/core/tiers.ts'

/** The default tier order, as tests use it. */
export const TIERS = new TierOrder()

/**
 * A resolved pool from a `[[pools]]` table, as the config resolver would produce it; throws on diagnostics.
 * @param entry the table
 * @param dir the config folder relative model paths resolve from
 */
export function poolConfig(entry: PoolEntry, dir = process.cwd()): PoolConfig {
  const { pools, diagnostics } = resolvePools([entry], {
    dir,
    file: 'test.toml',
    tiers: TIERS,
    defaultTier: 'internal',
  })
  if (diagnostics.some((d) => d.severity === 'error'))
    throw new Error(diagnostics.map((d) => `${d.path}: ${d.message}`).join('\n'))
  return pools[0] as PoolConfig
}

/**
 * Reads an SSE response into its `data:` payloads (without `[DONE]`).
 * @param res a fetch response with an event stream
 */
export async function readSse(res: Response): Promise<unknown[]> {
  const text = await res.text()
  return text
    .split('\n\n')
    .map((e) => e.replace(/^data: /, '').trim())
    .filter((d) => d !== '' && d !== '[DONE]')
    .map((d) => JSON.parse(d) as unknown)
}
