import { Readable } from 'node:stream'
import type { ReadableStream as NodeWebStream } from 'node:stream/web'
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { SovraError } from '../../runtime/core/errors.ts'
import type {
  Bucket,
  BucketListOptions,
  BucketListResult,
  BucketObject,
  BucketObjectBody,
  BucketPutOptions,
  BucketPutValue,
} from '../../runtime/core/ports.ts'
import { checkMetadata, chunksOf } from './fs-bucket.ts'
import { validateBucketName, validateKey } from '../../runtime/core/object-keys.ts'
import { MAX_LIST_LIMIT } from './list.ts'
import { objectBody, objectMeta } from '../../runtime/core/object-body.ts'

/** Connection settings for an S3-compatible store (MinIO or any S3). */
export interface S3Settings {
  endpoint: string
  region: string
  accessKeyId: string
  secretAccessKey: string
}

/** Bodies above this go up in parts (lib-storage), as S3 needs for anything over 5 GiB and is faster for big ones. */
export const MULTIPART_THRESHOLD = 8 * 1024 * 1024

/**
 * Reads S3 settings from `SOVRA_S3_ENDPOINT`, `SOVRA_S3_REGION` (default us-east-1), `SOVRA_S3_ACCESS_KEY_ID`,
 * `SOVRA_S3_SECRET_ACCESS_KEY`, over the given defaults (config).
 * @param env environment variables
 * @param base values from config
 */
export function s3SettingsFromEnv(env: Record<string, string | undefined>, base: Partial<S3Settings> = {}): S3Settings {
  const settings = {
    endpoint: env['SOVRA_S3_ENDPOINT'] ?? base.endpoint,
    region: env['SOVRA_S3_REGION'] ?? base.region ?? 'us-east-1',
    accessKeyId: env['SOVRA_S3_ACCESS_KEY_ID'] ?? base.accessKeyId,
    secretAccessKey: env['SOVRA_S3_SECRET_ACCESS_KEY'] ?? base.secretAccessKey,
  }
  const missing = Object.entries(settings)
    .filter(([, v]) => v === undefined || v === '')
    .map(([k]) => k)
  if (missing.length > 0) {
    throw new SovraError(
      'ERR_CONFIG',
      `S3 storage needs ${missing.join(', ')}: set [storage] in the config or SOVRA_S3_ENDPOINT, SOVRA_S3_ACCESS_KEY_ID, SOVRA_S3_SECRET_ACCESS_KEY`,
    )
  }
  return settings as S3Settings
}

/**
 * Creates an S3 client for MinIO-style stores: path-style addressing, and checksums only when the API requires
 * them (otherwise the SDK wraps stream bodies in aws-chunked framing that some servers store as the body; docs/platform-notes.md).
 * @param settings endpoint, region, credentials
 */
export function createS3Client(settings: S3Settings): S3Client {
  const config: S3ClientConfig = {
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: true,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  }
  return new S3Client(config)
}

/**
 * A bucket on an S3-compatible store (MinIO in a cluster; s3rver in tests).
 *
 * @example
 * const bucket = new S3Bucket('documents', createS3Client(s3SettingsFromEnv(process.env)))
 */
export class S3Bucket implements Bucket {
  readonly name: string
  readonly #client: S3Client

  /**
   * @param name the bucket name
   * @param client an S3 client (see {@link createS3Client})
   */
  constructor(name: string, client: S3Client) {
    validateBucketName(name)
    this.name = name
    this.#client = client
  }

  async put(key: string, value: BucketPutValue, options: BucketPutOptions = {}): Promise<BucketObject> {
    validateKey(key)
    const customMetadata = checkMetadata(options.customMetadata ?? {})
    const contentType = options.httpMetadata?.contentType ?? options.contentType
    const known =
      value === null || typeof value === 'string' || value instanceof Uint8Array || value instanceof ArrayBuffer
    const bytes = known ? await collect(value) : undefined
    const params = {
      Bucket: this.name,
      Key: key,
      Metadata: customMetadata,
      ...(contentType === undefined ? {} : { ContentType: contentType }),
    }
    await this.#call('put', key, async () => {
      if (bytes !== undefined && bytes.byteLength <= MULTIPART_THRESHOLD) {
        await this.#client.send(new PutObjectCommand({ ...params, Body: bytes, ContentLength: bytes.byteLength }))
      } else {
        const body = bytes ?? Readable.fromWeb(value as NodeWebStream<Uint8Array>)
        await new Upload({
          client: this.#client,
          params: { ...params, Body: body },
          partSize: MULTIPART_THRESHOLD,
          queueSize: 2,
        }).done()
      }
    })
    const meta = await this.head(key)
    if (meta === null)
      throw new SovraError('ERR_INTERNAL', `S3 put of ${this.name}/${key} succeeded but the object is not there`)
    return meta
  }

  async head(key: string): Promise<BucketObject | null> {
    validateKey(key)
    return this.#call('head', key, async () => {
      try {
        const r = await this.#client.send(new HeadObjectCommand({ Bucket: this.name, Key: key }))
        return toMeta(key, r)
      } catch (error) {
        if (isNotFound(error)) return null
        throw error
      }
    })
  }

  async get(key: string): Promise<BucketObjectBody | null> {
    validateKey(key)
    return this.#call('get', key, async () => {
      try {
        const r = await this.#client.send(new GetObjectCommand({ Bucket: this.name, Key: key }))
        const body =
          r.Body === undefined
            ? new ReadableStream<Uint8Array>({ start: (c) => c.close() })
            : (r.Body.transformToWebStream() as ReadableStream<Uint8Array>)
        return objectBody(toMeta(key, r), body)
      } catch (error) {
        if (isNotFound(error)) return null
        throw error
      }
    })
  }

  async delete(keys: string | readonly string[]): Promise<void> {
    const list = typeof keys === 'string' ? [keys] : [...keys]
    for (const k of list) validateKey(k)
    for (let i = 0; i < list.length; i += 1000) {
      const batch = list.slice(i, i + 1000)
      await this.#call('delete', batch[0] ?? '', async () => {
        const r = await this.#client.send(
          new DeleteObjectsCommand({
            Bucket: this.name,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        )
        if (r.Errors !== undefined && r.Errors.length > 0) {
          throw new SovraError(
            'ERR_INTERNAL',
            `S3 delete in ${this.name} failed for ${r.Errors.map((e) => `${e.Key}: ${e.Code}`).join(', ')}`,
          )
        }
      })
    }
  }

  async list(options: BucketListOptions = {}): Promise<BucketListResult> {
    const limit = options.limit ?? MAX_LIST_LIMIT
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new SovraError(
        'ERR_BAD_REQUEST',
        `list: limit must be an integer from 1 to ${MAX_LIST_LIMIT}, received ${JSON.stringify(options.limit)}`,
      )
    }
    return this.#call('list', options.prefix ?? '', async () => {
      const r = await this.#client.send(
        new ListObjectsV2Command({
          Bucket: this.name,
          MaxKeys: limit,
          ...(options.prefix === undefined ? {} : { Prefix: options.prefix }),
          ...(options.delimiter === undefined ? {} : { Delimiter: options.delimiter }),
          ...(options.cursor === undefined ? {} : { ContinuationToken: options.cursor }),
        }),
      )
      // ListObjectsV2 has no user metadata or content type; R2's list omits them too unless asked (include).
      const objects = (r.Contents ?? []).map((o) =>
        objectMeta({
          key: o.Key ?? '',
          size: o.Size ?? 0,
          etag: unquote(o.ETag),
          uploaded: o.LastModified ?? new Date(0),
          contentType: undefined,
          customMetadata: {},
          version: undefined,
        }),
      )
      return {
        objects,
        delimitedPrefixes: (r.CommonPrefixes ?? []).map((p) => p.Prefix ?? ''),
        truncated: r.IsTruncated === true,
        cursor: r.IsTruncated === true ? r.NextContinuationToken : undefined,
      }
    })
  }

  async #call<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      if (error instanceof SovraError) throw error
      const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } }
      throw new SovraError(
        'ERR_INTERNAL',
        `S3 ${op} ${this.name}/${key} failed: ${e.name ?? 'Error'} (${e.$metadata?.httpStatusCode ?? 'no status'}): ${e.message ?? String(error)}`,
        { cause: error },
      )
    }
  }
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } }
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404
}

function unquote(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '')
}

function toMeta(
  key: string,
  r: {
    ContentLength?: number | undefined
    ETag?: string | undefined
    LastModified?: Date | undefined
    ContentType?: string | undefined
    Metadata?: Record<string, string> | undefined
    VersionId?: string | undefined
  },
): BucketObject {
  return objectMeta({
    key,
    size: r.ContentLength ?? 0,
    etag: unquote(r.ETag),
    uploaded: r.LastModified ?? new Date(0),
    contentType: r.ContentType,
    customMetadata: r.Metadata ?? {},
    version: r.VersionId,
  })
}

async function collect(value: BucketPutValue): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  let total = 0
  for await (const c of chunksOf(value)) {
    parts.push(c)
    total += c.byteLength
  }
  return parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts, total)
}
