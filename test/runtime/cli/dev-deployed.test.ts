import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { HEAVY_HOOK_MS, ROOT, runCli, tempProject, waitFor } from '../../helpers.ts'

/** The JSON log lines a spawned host wrote to stdout. */
function logLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

describe('sovra dev with deployed versions', () => {
  // Issue 11: after `sovra deploy`, dev logged "function reloaded" on each save while the control plane kept routing
  // every request to the deployed stable version, so edits silently did nothing.
  it(
    'serves the working tree (not the deployed version), says so once, and logs a reload as "reload"',
    async () => {
      const dir = tempProject({
        'wrangler-compat.toml': '[[functions]]\nname = "v"\nmain = "v.ts"\nroutes = ["/v"]\n',
        'v.ts': 'export default { fetch() { return new Response("deployed") } }\n',
      })
      const cfg = ['--config', join(dir, 'wrangler-compat.toml'), '--state', join(dir, 'state')]
      process.env['SOVRA_ACTOR'] = 'alice'
      expect((await runCli(['keys', 'gen', ...cfg])).code).toBe(0)
      const deployed = await runCli(['deploy', ...cfg])
      expect(deployed.code, deployed.err).toBe(0)
      // The working tree moves on after the deploy.
      writeFileSync(join(dir, 'v.ts'), 'export default { fetch() { return new Response("one") } }\n')
      const child = spawn(process.execPath, [join(ROOT, 'bin/sovra.js'), 'dev', ...cfg, '--port', '0'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stderr = ''
      let stdout = ''
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
      try {
        const url = await waitFor(() => /on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1], 30_000)
        expect(await (await fetch(`${url}/v`)).text()).toBe('one')
        const notices = () =>
          logLines(stdout).filter(
            (l) => l['msg'] === 'dev serves the working tree; deployed versions of v are not routed in dev',
          )
        await waitFor(() => notices().length === 1, 10_000)
        writeFileSync(join(dir, 'v.ts'), 'export default { fetch() { return new Response("two") } }\n')
        await waitFor(async () => (await (await fetch(`${url}/v`)).text()) === 'two', 15_000)
        // Many requests: none reaches the deployed version (no canary, no stable routing in dev).
        const answers = await Promise.all(
          Array.from({ length: 20 }, async (_, i) =>
            (await fetch(`${url}/v`, { headers: { 'x-request-id': `r-${i}` } })).text(),
          ),
        )
        expect(new Set(answers)).toEqual(new Set(['two']))
        await waitFor(() => logLines(stdout).some((l) => l['msg'] === 'isolate replaced' && l['reason'] === 'reload'))
        expect(logLines(stdout).filter((l) => l['reason'] === 'crash')).toEqual([])
        expect(notices()).toHaveLength(1)
        // A deploy while dev runs (through dev's control endpoint) is recorded, and the log says dev does not route it.
        const again = await runCli(['deploy', '--canary', '50', ...cfg])
        expect(again.code, again.err).toBe(0)
        await waitFor(() =>
          logLines(stdout).some(
            (l) => l['msg'] === 'routing of v changed (recorded); dev keeps serving the working tree' && l['canary'],
          ),
        )
        expect(await (await fetch(`${url}/v`, { headers: { 'x-request-id': 'after-deploy' } })).text()).toBe('two')
      } finally {
        child.kill('SIGTERM')
      }
      expect(await exited).toBe(0)
    },
    HEAVY_HOOK_MS,
  )
})
