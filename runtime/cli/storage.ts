import { resolve } from 'node:path'
import type { Bucket } from '../core/ports.ts'
import type { Project } from '../config/resolve.ts'
import { SovraError } from '../core/errors.ts'
import { FsBucket, type FsEventSink } from '../../infra/storage/fs-bucket.ts'
import { createS3Client, S3Bucket, s3SettingsFromEnv } from '../../infra/storage/s3-bucket.ts'
import type { ObjectEvent } from '../core/handlers.ts'

/** Gives the bucket adapter for a bucket name. */
export type BucketProvider = (name: string) => Bucket

/** The state folder of a project: `.sovra/state` next to its config, unless overridden. */
export function stateDir(project: Project, override?: string): string {
  return override === undefined ? resolve(project.dir, '.sovra', 'state') : resolve(override)
}

/**
 * Wires the configured bucket adapter (the composition root's job): `[storage] driver = "fs"` (default; folders
 * under the state dir) or `"s3"` (MinIO or any S3; endpoint and access key id from `[storage]` or `SOVRA_S3_*`, the
 * secret key from `SOVRA_S3_SECRET_ACCESS_KEY` or the project secret `S3_SECRET_ACCESS_KEY`).
 * @param project the resolved project
 * @param options environment variables, state folder, where fs object events go
 */
export function createBucketProvider(
  project: Project,
  options: { env?: Record<string, string | undefined>; state?: string; onEvent?: (event: ObjectEvent) => void | Promise<void>; sink?: FsEventSink } = {},
): BucketProvider {
  const env = options.env ?? process.env
  const storage = project.config.storage ?? {}
  const driver = env['SOVRA_STORAGE_DRIVER'] ?? storage.driver ?? 'fs'
  const cache = new Map<string, Bucket>()
  if (driver === 'fs') {
    const root = storage.dir === undefined ? resolve(stateDir(project, options.state), 'buckets') : resolve(project.dir, storage.dir)
    return (name) => {
      let b = cache.get(name)
      if (b === undefined) {
        b = new FsBucket(name, root, { ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }), ...(options.sink === undefined ? {} : { sink: options.sink }) })
        cache.set(name, b)
      }
      return b
    }
  }
  if (driver !== 's3') throw new SovraError('ERR_CONFIG', `storage driver ${JSON.stringify(driver)} is unknown; valid: fs, s3`)
  const secret = env['SOVRA_S3_SECRET_ACCESS_KEY'] ?? project.secrets.pick(['S3_SECRET_ACCESS_KEY'])['S3_SECRET_ACCESS_KEY']
  const client = createS3Client(s3SettingsFromEnv(env, {
    ...(storage.endpoint === undefined ? {} : { endpoint: storage.endpoint }),
    ...(storage.region === undefined ? {} : { region: storage.region }),
    ...(storage.access_key_id === undefined ? {} : { accessKeyId: storage.access_key_id }),
    ...(secret === undefined ? {} : { secretAccessKey: secret }),
  }))
  return (name) => {
    let b = cache.get(name)
    if (b === undefined) {
      b = new S3Bucket(name, client)
      cache.set(name, b)
    }
    return b
  }
}
