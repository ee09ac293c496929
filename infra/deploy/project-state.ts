/**
 * The adapters a project's state lives in, wired from its config: buckets (fs or S3), the SQL store, the artifact
 * registry and its trust policy, the audit log. Every composition root (the CLI, `sovra/testing`, the gateway) gets
 * them from here, so they are wired one way.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { userInfo } from 'node:os'
import { join, resolve } from 'node:path'

import type { Project } from '../../runtime/config/resolve.ts'
import { SovraError } from '../../runtime/core/errors.ts'
import type { ObjectEvent } from '../../runtime/core/handlers.ts'
import type { Bucket, Db } from '../../runtime/core/ports.ts'
import { migrate } from '../db/migrate.ts'
import { FsBucket, type FsEventSink } from '../storage/fs-bucket.ts'
import { createS3Client, S3Bucket, s3SettingsFromEnv } from '../storage/s3-bucket.ts'
import { ARTIFACTS_BUCKET, Registry } from '../registry/registry.ts'
import { readTrustFile, trustPolicy, type TrustPolicy } from '../registry/trust.ts'
import { anchorAudit, auditLog, type AuditInput } from './audit.ts'
import { stateAuditCheckpoints } from './audit-checkpoints.ts'
import type { Actor } from './approvals.ts'

/** Gives the bucket adapter for a bucket name. */
export type BucketProvider = (name: string) => Bucket

/** The state folder of a project: `.sovra/state` next to its config, unless overridden. */
export function stateDir(project: Project, override?: string): string {
  return override === undefined ? resolve(project.dir, '.sovra', 'state') : resolve(override)
}

/**
 * Wires the configured bucket adapter: `[storage] driver = "fs"` (default; folders under the state dir) or `"s3"`
 * (MinIO or any S3; endpoint and access key id from `[storage]` or `SOVRA_S3_*`, the secret key from
 * `SOVRA_S3_SECRET_ACCESS_KEY` or the project secret `S3_SECRET_ACCESS_KEY`).
 * @param project the resolved project
 * @param options environment variables, state folder, where fs object events go
 */
export function createBucketProvider(
  project: Project,
  options: {
    env?: Record<string, string | undefined>
    state?: string
    onEvent?: (event: ObjectEvent) => void | Promise<void>
    sink?: FsEventSink
  } = {},
): BucketProvider {
  const env = options.env ?? process.env
  const storage = project.config.storage ?? {}
  const driver = env['SOVRA_STORAGE_DRIVER'] ?? storage.driver ?? 'fs'
  const cache = new Map<string, Bucket>()
  const cached =
    (make: (name: string) => Bucket): BucketProvider =>
    (name) => {
      let b = cache.get(name)
      if (b === undefined) {
        b = make(name)
        cache.set(name, b)
      }
      return b
    }
  if (driver === 'fs') {
    const root =
      storage.dir === undefined
        ? resolve(stateDir(project, options.state), 'buckets')
        : resolve(project.dir, storage.dir)
    const fsOptions = {
      ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
      ...(options.sink === undefined ? {} : { sink: options.sink }),
    }
    return cached((name) => new FsBucket(name, root, fsOptions))
  }
  if (driver !== 's3')
    throw new SovraError('ERR_CONFIG', `storage driver ${JSON.stringify(driver)} is unknown; valid: fs, s3`)
  const secret =
    env['SOVRA_S3_SECRET_ACCESS_KEY'] ?? project.secrets.pick(['S3_SECRET_ACCESS_KEY'])['S3_SECRET_ACCESS_KEY']
  const client = createS3Client(
    s3SettingsFromEnv(env, {
      ...(storage.endpoint === undefined ? {} : { endpoint: storage.endpoint }),
      ...(storage.region === undefined ? {} : { region: storage.region }),
      ...(storage.access_key_id === undefined ? {} : { accessKeyId: storage.access_key_id }),
      ...(secret === undefined ? {} : { secretAccessKey: secret }),
    }),
  )
  return cached((name) => new S3Bucket(name, client))
}

/** True when the project has durable triggers (crons, object triggers) and so needs the SQL store. */
export function needsStore(project: Project): boolean {
  return project.functions.some((f) => f.crons.length > 0 || f.objectTriggers.length > 0)
}

/**
 * Opens and migrates the SQL store: a PostgreSQL server when `SOVRA_DATABASE_URL` or `[database] url` names one,
 * else the embedded PGlite under `<state>/db` (one process at a time).
 * @param project the resolved project
 * @param options environment variables and the state folder
 */
export async function openStore(
  project: Project,
  options: { env?: Record<string, string | undefined>; state?: string | undefined } = {},
): Promise<Db> {
  const held = shared.get(stateDir(project, options.state))
  // The host of this state runs a command for the CLI (the admin API): the command uses the host's open store.
  if (held !== undefined) return { ...held, close: async () => {} }
  const env = options.env ?? process.env
  const url = env['SOVRA_DATABASE_URL'] ?? project.config.database?.url
  // The audit chain's head is signed into the artifacts bucket, outside the database (issue 11, R4).
  const checkpoints = stateAuditCheckpoints({
    stateDir: stateDir(project, options.state),
    bucket: () =>
      createBucketProvider(project, { env, ...(options.state === undefined ? {} : { state: options.state }) })(
        ARTIFACTS_BUCKET,
      ),
    trust: () => loadTrust(project),
    env,
  })
  const db =
    // Loaded on use: commands that never open a store (help, config check) do not pay for either driver.
    url !== undefined && url !== ''
      ? await (await import('../db/pg.ts')).openPg(url)
      : await (await import('../db/pglite.ts')).openPglite(join(stateDir(project, options.state), 'db'))
  try {
    await migrate(db)
  } catch (error) {
    await db.close()
    throw error
  }
  return anchorAudit(db, checkpoints)
}

/**
 * Runs `fn` with the project's SQL store open, closing it after.
 * @param project the project
 * @param state the state folder override
 * @param fn what to do
 */
export async function withStore<T>(
  project: Project,
  state: string | undefined,
  fn: (db: Db) => Promise<T>,
): Promise<T> {
  const db = await openStore(project, { state })
  try {
    return await fn(db)
  } finally {
    await db.close()
  }
}

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

const shared = new Map<string, Db>()

/**
 * Lends a running host's open store to commands it runs in its own process (the admin API's control endpoint), so
 * they do not open the state a second time (PGlite is one process at a time); returns the function that ends it.
 * @param project the project
 * @param state the state folder override
 * @param db the host's store
 */
export function shareStore(project: Project, state: string | undefined, db: Db): () => void {
  const dir = stateDir(project, state)
  shared.set(dir, db)
  return () => {
    if (shared.get(dir) === db) shared.delete(dir)
  }
}

const acting = new AsyncLocalStorage<Actor>()

/**
 * Runs `fn` on behalf of an actor the host established (a verified token, or a loopback caller's claimed name).
 * @param who the actor
 * @param fn what to do
 */
export function withActor<T>(who: Actor, fn: () => T): T {
  return acting.run(who, fn)
}

/** Who is acting, and how the platform knows: the actor a host set, else `SOVRA_ACTOR` or the OS user, claimed. */
export function currentActor(): Actor {
  return acting.getStore() ?? { name: process.env['SOVRA_ACTOR'] ?? userInfo().username, via: 'claimed' }
}

/** Who is acting, by name: the actor a host set, else `SOVRA_ACTOR`, else the OS user. */
export function actor(): string {
  return currentActor().name
}

/**
 * Appends one audit entry (opening the SQL store for it).
 * @param project the resolved project
 * @param state the state folder override
 * @param entry the entry
 */
export async function audit(
  project: Project,
  state: string | undefined,
  entry: Omit<AuditInput, 'actor'>,
): Promise<void> {
  await withStore(project, state, (db) => auditLog(db).append({ actor: actor(), ...entry }))
}
