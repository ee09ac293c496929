import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { COMMANDS } from '../../../runtime/cli/main.ts'
import { ROOT, runCli } from '../../helpers.ts'

/**
 * Splits a usage line at the `|` that separate its forms, not those inside `[...]`, `<...>` or `(...)`
 * (`[--target openwhisk|local]` is one option, not two forms).
 * @param line one line of a usage text
 */
function forms(line: string): string[] {
  const out = ['']
  let depth = 0
  for (const ch of line) {
    if ('[<('.includes(ch)) depth++
    if (')>]'.includes(ch)) depth--
    if (ch === '|' && depth === 0) out.push('')
    else out[out.length - 1] += ch
  }
  return out
}

/**
 * The subcommands a command's usage lists: the bare word after `sovra <name>` in each form, or the first word of a
 * form that continues the previous one (`sovra objects put ... | get <bucket>/<key> | ls ...`).
 * @param name the command
 * @param usage its usage text
 */
function subcommands(name: string, usage: string): string[] {
  const subs = new Set<string>()
  for (const line of usage.split('\n')) {
    for (const form of forms(line)) {
      const words = form.trim().split(/\s+/)
      if (words[0] === 'sovra' && words[1] !== name) continue
      const word = words[0] === 'sovra' ? words[2] : words[0]
      if (word !== undefined && /^[a-z][a-z-]*$/.test(word)) subs.add(word)
    }
  }
  return [...subs]
}

/** Every command's subcommands, from the usage texts. */
async function allSubcommands(): Promise<Record<string, string[]>> {
  const all: Record<string, string[]> = {}
  for (const [name, load] of Object.entries(COMMANDS)) all[name] = subcommands(name, (await load()).usage)
  return all
}

describe('sovra <command> --help', () => {
  it('prints the usage and exits 0 for every command, also those that take a subcommand first', async () => {
    for (const name of Object.keys(COMMANDS)) {
      for (const flag of ['--help', '-h', 'help']) {
        const res = await runCli([name, flag])
        expect({ name, flag, code: res.code, err: res.err }).toEqual({ name, flag, code: 0, err: '' })
        expect(res.out).toMatch(new RegExp(`^usage: .*sovra ${name}\\b`))
      }
    }
  })

  it('answers `sovra help <command>` as `sovra <command> --help`, and names a command that does not exist', async () => {
    expect(await runCli(['help', 'objects'])).toEqual(await runCli(['objects', '--help']))
    const unknown = await runCli(['help', 'nope'])
    expect(unknown.code).toBe(2)
    expect(unknown.err).toMatch(/unknown command "nope"; valid commands are: start, dev/)
  })

  it('finds the subcommands each usage lists (the table the next test walks)', async () => {
    const all = await allSubcommands()
    // The ones issue 11 names, and a few more, so a change to the parsing above cannot silently empty the walk.
    expect(all['objects']).toEqual(expect.arrayContaining(['put', 'get', 'ls', 'rm']))
    expect(all['keys']).toEqual(expect.arrayContaining(['gen', 'ls']))
    expect(all['trigger']).toEqual(expect.arrayContaining(['cron', 'object']))
    expect(all['rollout']).toEqual(expect.arrayContaining(['status', 'promote', 'rollback', 'pin', 'unpin']))
    expect(all['config']).toEqual(expect.arrayContaining(['check', 'schema']))
    expect(all['models']).toEqual(expect.arrayContaining(['make-tiny', 'push', 'ls', 'verify']))
    // Option values and placeholders are not subcommands.
    expect(all['build']).toEqual([])
    expect(all['sign']).toEqual([])
    expect(all['invoke']).toEqual([])
  })

  it('prints the usage and exits 0 for every subcommand, before or after its arguments', async () => {
    for (const [name, subs] of Object.entries(await allSubcommands())) {
      for (const sub of subs) {
        for (const args of [
          [name, sub, '--help'],
          [name, sub, '-h'],
          [name, sub, 'some-fn', 'some/arg', '--help'],
        ]) {
          const res = await runCli(args)
          expect({ args, code: res.code, err: res.err }).toEqual({ args, code: 0, err: '' })
          expect(res.out).toMatch(new RegExp(`^usage: .*sovra ${name}\\b`))
          expect(res.out).toMatch(new RegExp(`\\b${sub}\\b`))
        }
      }
    }
  }, 60_000)

  it('reads --help after `--` as an argument, not as a request for help', async () => {
    // `sovra config check -- --help`: the command sees a stray positional, a usage error, not the usage.
    const res = await runCli(['config', 'check', '--', '--help'])
    expect(res.code).toBe(2)
    expect(res.err).toMatch(/ERR_USAGE/)
  })

  it('works as a process (objects, keys and trigger used to read --help as a subcommand)', () => {
    for (const args of [
      ['objects', '--help'],
      ['keys', '--help'],
      ['trigger', '--help'],
      ['objects', 'put', '--help'],
      ['keys', 'gen', '--help'],
      ['trigger', 'cron', '--help'],
      ['rollout', 'promote', '--help'],
    ]) {
      const res = spawnSync(process.execPath, [join(ROOT, 'bin/sovra.js'), ...args], {
        encoding: 'utf8',
        timeout: 60_000,
      })
      expect({ args, status: res.status, stderr: res.stderr }).toEqual({ args, status: 0, stderr: '' })
      expect(res.stdout).toMatch(new RegExp(`^usage: sovra ${args[0]} `))
    }
  }, 120_000)
})
