import type { SovraParams } from '../../hosts/openwhisk/entry.ts'
// The action side of a binding is a composition root (as runtime/testing is): it wires the S3 adapter into actions.
import { createS3Client, S3Bucket, type S3Settings } from '../../../infra/storage/s3-bucket.ts'

/**
 * The bucket bindings of an action's `env` on OpenWhisk, from the deploy-time `__sovra` parameter: each bucket
 * binding as an S3 bucket on the cluster's MinIO (`s3` settings bound at deploy). Bundled into an action only when
 * its function binds buckets, so other actions stay small.
 * @param config the `__sovra` parameter
 */
export function actionEnv(config: SovraParams): Record<string, unknown> {
  const env: Record<string, unknown> = {}
  const buckets = (config['buckets'] ?? []) as Array<{ binding: string; bucket: string }>
  if (buckets.length > 0) {
    const s3 = config['s3'] as S3Settings | undefined
    if (s3 === undefined)
      throw new Error('sovra: this action binds buckets but was deployed without S3 settings (__sovra.s3)')
    const client = createS3Client(s3)
    for (const b of buckets) env[b.binding] = new S3Bucket(b.bucket, client)
  }
  return env
}
