import * as v from 'valibot'

import { isSovraError, SovraError } from '../../core/errors.ts'
import { validateBucketName } from '../../core/object-keys.ts'
import type { Bucket } from '../../core/ports.ts'
import { show } from '../../config/diagnostics.ts'
import { defineBinding, ENV_NAME } from '../define.ts'
import { bucketClient } from './client.ts'
import { serveBucketCall } from './serve.ts'

declare module '../define.ts' {
  interface HostServices {
    /** The bucket adapter for a bucket name (fs embedded, S3/MinIO in a cluster). */
    buckets?: ((name: string) => Bucket) | undefined
  }
}

function bucketNameIssue(name: string): string | undefined {
  try {
    validateBucketName(name)
    return undefined
  } catch (e) {
    return isSovraError(e) ? e.message : String(e)
  }
}

/** A bucket binding: `env[name]` is the bucket `bucket` (R2's API over the fs or S3 adapter). */
export const BucketBindingSchema = v.object({
  type: v.literal('bucket'),
  name: v.pipe(v.string(), v.regex(ENV_NAME, 'a JavaScript identifier for env (e.g. "DOCS")')),
  bucket: v.pipe(
    v.string(),
    v.check(
      (b) => bucketNameIssue(b) === undefined,
      (issue) => bucketNameIssue(String(issue.input)) ?? 'invalid bucket name',
    ),
  ),
})
export type BucketBinding = v.InferOutput<typeof BucketBindingSchema>

/**
 * Bucket bindings (`[[r2_buckets]] binding = "DOCS", bucket_name = "documents"`, or a `bindings` entry
 * `{ type = "bucket", name = "DOCS", bucket = "documents" }`).
 */
export const bucket = defineBinding({
  type: 'bucket',
  schema: BucketBindingSchema,
  resolve(worker, native, ctx) {
    const out: BucketBinding[] = [...native]
    ;(worker.r2_buckets ?? []).forEach((b, i) => {
      const at = (key: string): string => ctx.at(`r2_buckets[${i}].${key}`)
      const name = b.bucket_name
      if (name === undefined)
        return ctx.error(at('bucket_name'), `expected the bucket name for binding ${show(b.binding)}, received nothing`)
      const issue = bucketNameIssue(name)
      if (issue !== undefined) return ctx.error(at('bucket_name'), issue)
      if (!ENV_NAME.test(b.binding))
        return ctx.error(
          at('binding'),
          `expected a JavaScript identifier for env (e.g. "DOCS"), received ${show(b.binding)}`,
        )
      out.push({ type: 'bucket', name: b.binding, bucket: name })
    })
    return out
  },
  client: (call) => bucketClient(call),
  serve(spec, services, caller) {
    if (services.buckets === undefined) {
      throw new SovraError(
        'ERR_CONFIG',
        `function "${caller.function}" binds bucket ${spec.name} but this host has no storage configured`,
      )
    }
    const adapter = services.buckets(spec.bucket)
    return (method, args) => serveBucketCall(adapter, method, args)
  },
  actionParams(specs, inputs, fn) {
    if (inputs.s3 === undefined) {
      throw new SovraError(
        'ERR_CONFIG',
        `function "${fn}" binds buckets; deploying it needs the cluster's S3 settings ([storage] endpoint + SOVRA_S3_* variables)`,
      )
    }
    return { buckets: specs.map((s) => ({ binding: s.name, bucket: s.bucket })), s3: inputs.s3 }
  },
})
