import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { S3Settings } from '../../infra/storage/s3-bucket.ts'
import { ROOT } from '../helpers.ts'

/** A running S3-compatible server for tests, and the S3 event records it has emitted. */
export interface TestS3 {
  settings: S3Settings
  events: Array<Record<string, unknown>>
  /** True for a real MinIO/S3 given through SOVRA_TEST_S3_ENDPOINT (buckets must exist; no events are seen). */
  external: boolean
  stop(): Promise<void>
}

/**
 * Starts s3rver on 127.0.0.1 with the given buckets, or uses the store named by `SOVRA_TEST_S3_ENDPOINT`,
 * `SOVRA_TEST_S3_ACCESS_KEY_ID` and `SOVRA_TEST_S3_SECRET_ACCESS_KEY` (a real MinIO) when set.
 * @param buckets bucket names to create
 */
export async function startTestS3(buckets: string[]): Promise<TestS3> {
  const endpoint = process.env['SOVRA_TEST_S3_ENDPOINT']
  if (endpoint !== undefined && endpoint !== '') {
    return {
      settings: {
        endpoint,
        region: process.env['SOVRA_TEST_S3_REGION'] ?? 'us-east-1',
        accessKeyId: process.env['SOVRA_TEST_S3_ACCESS_KEY_ID'] ?? '',
        secretAccessKey: process.env['SOVRA_TEST_S3_SECRET_ACCESS_KEY'] ?? '',
      },
      events: [],
      external: true,
      stop: async () => undefined,
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'sovra-s3rver-'))
  const child: ChildProcess = spawn(
    process.execPath,
    ['--openssl-legacy-provider', join(ROOT, 'test/support/s3rver-process.mjs'), dir, ...buckets],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const events: Array<Record<string, unknown>> = []
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code} before listening`)))
    lines.on('line', (line) => {
      const msg = JSON.parse(line) as { port?: number; event?: { Records?: Array<Record<string, unknown>> } }
      if (msg.port !== undefined) resolve(msg.port)
      for (const r of msg.event?.Records ?? []) events.push(r)
    })
  })
  return {
    settings: {
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
    },
    events,
    external: false,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        await new Promise((r) => child.once('exit', r))
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
