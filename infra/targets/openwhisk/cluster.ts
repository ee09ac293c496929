import type { Project } from '../../../runtime/config/resolve.ts'
import { SovraError } from '../../../runtime/core/errors.ts'

/** Where a command reaches the cluster: flags over `SOVRA_OW_*` over `[targets.openwhisk]`; the key never from the file. */
export interface OwTarget {
  apihost: string | undefined
  /** `uuid:key`, from SOVRA_OW_AUTH or the secret OW_AUTH. */
  auth: string | undefined
  namespace: string | undefined
  /** The gateway URL actions' env.AI calls (`[targets.openwhisk] ai_url`). */
  aiUrl: string | undefined
}

/**
 * Resolves the OpenWhisk target of a command (deploy, gateway, rollout, minio).
 * @param project the project
 * @param flags `--apihost`, `--namespace`
 * @param env environment variables
 */
export function owTarget(
  project: Project,
  flags: { apihost?: string | undefined; namespace?: string | undefined },
  env: Record<string, string | undefined> = process.env,
): OwTarget {
  const t = (project.config.targets?.['openwhisk'] ?? {}) as { apihost?: string; namespace?: string; ai_url?: string }
  return {
    apihost: flags.apihost ?? env['SOVRA_OW_APIHOST'] ?? t.apihost,
    auth: env['SOVRA_OW_AUTH'] ?? project.secrets.pick(['OW_AUTH'])['OW_AUTH'],
    namespace: flags.namespace ?? t.namespace,
    aiUrl: t.ai_url,
  }
}

/**
 * The target with API host and key present (ERR_USAGE naming where to set each otherwise).
 * @param t the resolved target
 * @param usage the command's usage line
 */
export function requireCluster(t: OwTarget, usage: string): OwTarget & { apihost: string; auth: string } {
  if (t.apihost === undefined)
    throw new SovraError(
      'ERR_USAGE',
      `no OpenWhisk API host: pass --apihost, set SOVRA_OW_APIHOST, or [targets.openwhisk] apihost in the config\nusage: ${usage}`,
    )
  if (t.auth === undefined || !t.auth.includes(':'))
    throw new SovraError(
      'ERR_USAGE',
      `no OpenWhisk key: set SOVRA_OW_AUTH=uuid:key (or the secret OW_AUTH); received ${t.auth === undefined ? 'nothing' : 'a value without ":"'}`,
    )
  return t as OwTarget & { apihost: string; auth: string }
}
