import { userInfo } from 'node:os'
import { join } from 'node:path'

import type { Project } from '../config/resolve.ts'
import { auditLog, type AuditInput } from '../../infra/deploy/audit.ts'
import { ARTIFACTS_BUCKET, Registry } from '../../infra/registry/registry.ts'
import { readTrustFile, trustPolicy, type TrustPolicy } from '../../infra/registry/trust.ts'
import { createBucketProvider } from './storage.ts'
import { openStore } from './store.ts'

/** Where signing keys and the local trust list live. */
export function keysDir(project: Project): string {
  return join(project.dir, '.sovra', 'keys')
}

/** The local trust file `sovra keys gen` adds to. */
export function trustFile(project: Project): string {
  return join(keysDir(project), 'trust.json')
}

/**
 * The trust policy: `[[trust]]` from the config plus the local trust file.
 * @param project the resolved project
 */
export function loadTrust(project: Project): TrustPolicy {
  return trustPolicy([...(project.config.trust ?? []), ...readTrustFile(trustFile(project))])
}

/**
 * The registry over the project's artifacts bucket (fs under the state folder, or MinIO with `[storage] driver = "s3"`).
 * @param project the resolved project
 * @param state the state folder override
 */
export function openRegistry(project: Project, state?: string): Registry {
  return new Registry(createBucketProvider(project, state === undefined ? {} : { state })(ARTIFACTS_BUCKET))
}

/** Who is acting: `SOVRA_ACTOR`, else the OS user. */
export function actor(): string {
  return process.env['SOVRA_ACTOR'] ?? userInfo().username
}

/**
 * Appends one audit entry (opening the SQL store for it).
 * @param project the resolved project
 * @param state the state folder override
 * @param entry the entry
 */
export async function audit(project: Project, state: string | undefined, entry: Omit<AuditInput, 'actor'>): Promise<void> {
  const db = await openStore(project, state === undefined ? {} : { state })
  try {
    await auditLog(db).append({ actor: actor(), ...entry })
  } finally {
    await db.close()
  }
}
