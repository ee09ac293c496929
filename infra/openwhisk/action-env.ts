import type { SovraParams } from '../../runtime/hosts/openwhisk/entry.ts'
import { createS3Client, S3Bucket, type S3Settings } from '../storage/s3-bucket.ts'

/**
 * The bucket bindings of an action's `env` on OpenWhisk, from the deploy-time `__sovra` parameter: each
 * `[[r2_buckets]]` binding as an S3 bucket on the cluster's MinIO (`s3` settings bound at deploy). Bundled into an
 * action only when its function binds buckets, so other actions stay small.
 * @param config the `__sovra` parameter
 */
export function actionEnvWithBuckets(config: SovraParams): Record<string, unknown> {
  // Vars and secrets are merged by the entry's env; this adds only the bucket bindings.
  const env: Record<string, unknown> = {}
  const buckets = (config['buckets'] ?? []) as Array<{ binding: string; bucket: string }>
  if (buckets.length > 0) {
    const s3 = config['s3'] as S3Settings | undefined
    if (s3 === undefined) throw new Error('sovra: this action binds buckets but was deployed without S3 settings (__sovra.s3)')
    const client = createS3Client(s3)
    for (const b of buckets) env[b.binding] = new S3Bucket(b.bucket, client)
  }
  return env
}
