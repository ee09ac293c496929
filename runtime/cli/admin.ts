import type { Project } from '../config/resolve.ts'
import { DEFAULT_PORT } from '../hosts/local/host.ts'
import { hostFilePath, runningHostUrl } from './host-file.ts'

/**
 * The admin API base URL a command talks to: `--url`, else the host running on the project's state folder (the
 * `host.json` it wrote, when its process is alive and answers health), else the default host address. A host on
 * another port is found, so the command does not fall back to the state that host holds ("database in use").
 * @param url the `--url` value
 * @param project the resolved project
 * @param state the state folder override (`--state`)
 */
export async function adminUrl(url: string | undefined, project: Project, state: string | undefined): Promise<string> {
  const found = url ?? (await runningHostUrl(hostFilePath(project, state))) ?? `http://127.0.0.1:${DEFAULT_PORT}`
  return found.replace(/\/+$/, '')
}

/**
 * Calls the running host's admin API; undefined when no host answers (then the command works on the state itself).
 * @param url the admin base URL
 * @param path the path under it
 * @param init the request
 */
export async function callHost(url: string, path: string, init?: RequestInit): Promise<Response | undefined> {
  try {
    return await fetch(`${url}${path}`, init)
  } catch {
    return undefined
  }
}
