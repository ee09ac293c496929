import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { FsBucket } from '../../../infra/storage/fs-bucket.ts'
import { ROOT, waitFor } from '../../helpers.ts'

const DIR = mkdtempSync(join(tmpdir(), 'sovra-sweep-'))
afterAll(() => rmSync(DIR, { recursive: true, force: true }))

// Puts 20 MiB through a slow stream: 2 MiB at once, then 1 MiB a second, so it is killed mid-put.
const WRITER = `
import { FsBucket } from ${JSON.stringify(pathToFileURL(join(ROOT, 'infra/storage/fs-bucket.ts')).href)}
const bucket = new FsBucket('docs', process.argv[2])
const chunk = new Uint8Array(1024 * 1024).fill(7)
let sent = 0
const body = new ReadableStream({
  async pull(controller) {
    if (sent === 20) return controller.close()
    if (sent >= 2) await new Promise((r) => setTimeout(r, 1000))
    sent++
    controller.enqueue(chunk.slice())
  },
})
await bucket.put('big.bin', body)
`

describe('FsBucket temp files', () => {
  it('removes the temp file of a put whose process was killed (SIGKILL) when the bucket is opened again', async () => {
    const root = join(DIR, 'killed')
    const script = join(DIR, 'writer.mts')
    writeFileSync(script, WRITER)
    const child = spawn(process.execPath, ['--import', 'tsx', script, root], { cwd: ROOT, stdio: 'ignore' })
    const exited = new Promise((resolve) => child.on('exit', resolve))
    const tmp = join(root, 'docs', '.tmp')
    // Killed once at least 2 MiB of the 20 are on disk.
    const name = await waitFor(() => {
      const names = (() => {
        try {
          return readdirSync(tmp)
        } catch {
          return []
        }
      })()
      return names.find((n) => statSync(join(tmp, n)).size >= 2 * 1024 * 1024)
    }, 30_000)
    child.kill('SIGKILL')
    await exited
    expect(name).toMatch(new RegExp(`^pid${child.pid}-`))
    expect(readdirSync(tmp)).toEqual([name])

    const reopened = new FsBucket('docs', root)
    expect(await reopened.sweptTemp()).toEqual([name])
    expect(readdirSync(tmp)).toEqual([])
    expect((await reopened.list()).objects).toEqual([])
    expect(await reopened.head('big.bin')).toBeNull()
  }, 60_000)

  it("keeps the temp files of live writers, and removes this pid's from before this process started", async () => {
    const root = join(DIR, 'live')
    const tmp = join(root, 'docs', '.tmp')
    mkdirSync(tmp, { recursive: true })
    const old = new Date(Date.now() - 3600_000)
    const files = {
      // A put in progress in this process.
      ours: `pid${process.pid}-00000000-0000-4000-8000-000000000001`,
      // The same pid before this process started (a container restart reuses it).
      reused: `pid${process.pid}-00000000-0000-4000-8000-000000000002`,
      // Another live process (the one that started this test), e.g. `sovra objects put` beside the host.
      live: `pid${process.ppid}-00000000-0000-4000-8000-000000000003`,
      // Written before pids were recorded in the name: stale once older than the open.
      legacy: '00000000-0000-4000-8000-000000000004',
    }
    for (const n of Object.values(files)) writeFileSync(join(tmp, n), 'partial')
    utimesSync(join(tmp, files.reused), old, old)
    utimesSync(join(tmp, files.legacy), old, old)

    const removed = await new FsBucket('docs', root).sweptTemp()
    expect(removed.sort()).toEqual([files.legacy, files.reused].sort())
    expect(readdirSync(tmp).sort()).toEqual([files.live, files.ours].sort())
  })

  it('names its temp files with its pid, and leaves none after a put', async () => {
    const root = join(DIR, 'put')
    const bucket = new FsBucket('docs', root)
    await bucket.put('a.txt', 'hello')
    expect(readdirSync(join(root, 'docs', '.tmp'))).toEqual([])
    expect(await (await bucket.get('a.txt'))?.text()).toBe('hello')
  })
})
