import { SovraError } from '../../runtime/core/errors.ts'
import type { Target } from './define.ts'
import { local } from './local/index.ts'
import { openwhisk } from './openwhisk/index.ts'

/**
 * Every deploy target, by name. Adding one is a folder (`infra/targets/<name>/`, made with defineTarget) and one
 * line here; `sovra deploy --target <name>` and `sovra rollout --target <name>` look it up.
 */
export const TARGETS = { local, openwhisk } as const

/**
 * The target of a `--target` flag (default local).
 * @param name the flag's value
 */
export function targetOf(name: string | undefined): Target {
  const t = (TARGETS as unknown as Record<string, Target | undefined>)[name ?? 'local']
  if (t === undefined)
    throw new SovraError(
      'ERR_USAGE',
      `--target: unknown target ${JSON.stringify(name)}; valid: ${Object.keys(TARGETS).join(', ')} (default local)`,
    )
  return t
}
