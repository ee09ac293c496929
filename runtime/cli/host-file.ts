import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Project } from '../config/resolve.ts'
import { stateDir } from '../../infra/deploy/project-state.ts'

/** What a running host writes into its state folder so that CLI commands find its admin API. */
export interface HostFile {
  /** The admin API base URL, e.g. `http://127.0.0.1:8787`. */
  url: string
  pid: number
  /** ISO 8601. */
  started_at: string
}

/**
 * The host file of a project's state folder: `<state>/host.json`, next to the embedded database's lock.
 * @param project the resolved project
 * @param state the state folder override (`--state`)
 */
export function hostFilePath(project: Project, state: string | undefined): string {
  return join(stateDir(project, state), 'host.json')
}

/**
 * Records a running host's admin URL; returns the function that removes the record (only while it is still this
 * process's: a later host on the same state may have replaced it).
 * @param file the host file path
 * @param url the host's URL; a wildcard bind address (`0.0.0.0`, `::`) is recorded as loopback, where a local
 *   command can reach it
 */
export function writeHostFile(file: string, url: string): () => void {
  const record: HostFile = {
    url: url.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:'),
    pid: process.pid,
    started_at: new Date().toISOString(),
  }
  mkdirSync(dirname(file), { recursive: true })
  // Written whole, then renamed: a command reading at the same moment sees the old file or the new, never half.
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, `${JSON.stringify(record)}\n`)
  renameSync(tmp, file)
  return () => {
    if (readHostFile(file)?.pid === process.pid) rmSync(file, { force: true })
  }
}

function readHostFile(file: string): HostFile | undefined {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as Partial<HostFile>
    return typeof r.url === 'string' && Number.isInteger(r.pid) ? (r as HostFile) : undefined
  } catch {
    return undefined
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The admin URL recorded in a state folder's host file, when its process is still alive; undefined when there is no
 * file or it is stale (its process is gone). Whether a host of this project answers there is for the caller to check
 * (a host that crashed, or one whose port another process took): runtime/cli/admin.ts does.
 * @param file the host file path
 */
export function recordedHostUrl(file: string): string | undefined {
  const record = readHostFile(file)
  return record === undefined || !processAlive(record.pid) ? undefined : record.url
}
