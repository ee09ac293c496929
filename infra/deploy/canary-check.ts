import type { ControlPlane } from './control-plane.ts'
import {
  judgeCanary,
  type RolloutThresholds,
  type Verdict,
  type WindowStats,
} from '../../triggers/http/canary-judge.ts'

export {
  DEFAULT_ROLLOUT,
  judgeCanary,
  type RolloutThresholds,
  type Verdict,
  type WindowStats,
} from '../../triggers/http/canary-judge.ts'

/**
 * One controller pass for a function: judges its canary from the window's stats and rolls it back (recording the
 * reason in the audit log) when the verdict says so.
 * @param cp the control plane
 * @param fn the function
 * @param t its thresholds
 * @param stats reads a version's stats over the last `windowS` seconds
 */
export async function checkCanary(
  cp: ControlPlane,
  fn: string,
  t: RolloutThresholds,
  stats: (version: string, windowS: number) => Promise<WindowStats>,
): Promise<Verdict | undefined> {
  const r = await cp.routing(fn)
  if (r?.canary === undefined) return undefined
  const verdict = judgeCanary(t, await stats(r.stable, t.windowS), await stats(r.canary.version, t.windowS))
  if (verdict.verdict === 'rollback') await cp.rollback(fn, 'rollout-controller', verdict.reason)
  return verdict
}
