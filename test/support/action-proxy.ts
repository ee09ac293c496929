import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const SCRIPT = fileURLToPath(new URL('./action-proxy-process.mjs', import.meta.url))

/**
 * Starts an OpenWhisk Node.js action proxy on 127.0.0.1 in its own process (one container), as observed
 * (docs/platform-notes.md): `POST /init` with `{value: {name, main, code, binary, env}}` (200 `{"OK":true}`, a second init 403, a
 * syntax error or a missing entry 502 "Initialization has failed due to: ..."), `POST /run` with
 * `{value, activation_id, deadline, ...}` (200 with the result; a non-object result 502 "The action did not return a
 * dictionary."; a synchronous throw 502 "An error has occurred: ..."; a rejected promise 200 `{error: ...}`). Like
 * the real proxy it never enforces the deadline: it only sets `__OW_DEADLINE`.
 */
export async function startActionProxy(): Promise<{ url: string; close(): Promise<void> }> {
  const child = spawn(process.execPath, [SCRIPT], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`action proxy exited with ${code}`)))
    createInterface({ input: child.stdout }).once('line', resolve)
  })
  return {
    url: `http://127.0.0.1:${port.trim()}`,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}
