import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { COMMANDS } from '../../../runtime/cli/main.ts'
import { ROOT, runCli } from '../../helpers.ts'

describe('sovra <command> --help', () => {
  it('prints the usage and exits 0 for every command, also those that take a subcommand first', async () => {
    for (const name of Object.keys(COMMANDS)) {
      for (const flag of ['--help', '-h']) {
        const res = await runCli([name, flag])
        expect({ name, flag, code: res.code, err: res.err }).toEqual({ name, flag, code: 0, err: '' })
        expect(res.out).toMatch(new RegExp(`^usage: .*sovra ${name}\\b`))
      }
    }
  })

  it('works as a process (objects, keys and trigger used to read --help as a subcommand)', () => {
    for (const name of ['objects', 'keys', 'trigger']) {
      const res = spawnSync(process.execPath, [join(ROOT, 'bin/sovra.js'), name, '--help'], {
        encoding: 'utf8',
        timeout: 60_000,
      })
      expect(res.status).toBe(0)
      expect(res.stdout).toMatch(new RegExp(`^usage: sovra ${name} `))
    }
  }, 90_000)
})
