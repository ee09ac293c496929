import { spawnSync } from 'node:child_process'
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../../helpers.ts'

/** What the stand-in CLI below prints: where each of its modules thinks it is, and its version. */
interface Report {
  version: number
  mainUrl: string
  helperUrl: string
  lazyUrl: string
  lazyDirname: string
  text: string
}

// A stand-in sovra: the real bin/ (launcher and bundler) over a small runtime/cli/main.ts whose modules report their
// own import.meta, so the tests can edit sources freely without touching this checkout's.
const FILES: Record<string, string> = {
  'package.json': '{ "type": "module" }\n',
  'runtime/cli/version.ts': 'export const VERSION: number = 1\n',
  'runtime/cli/helper.ts': 'export const helperUrl = import.meta.url\n',
  'runtime/cli/lazy.ts': 'export const lazyUrl = import.meta.url\nexport const lazyDirname = import.meta.dirname\n',
  'runtime/cli/main.ts': `import { VERSION } from './version.ts'
import { helperUrl } from './helper.ts'

export async function main(_argv: string[]): Promise<number> {
  const { lazyUrl, lazyDirname } = await import('./lazy.ts')
  // A string that mentions import.meta.url (as the test file \`sovra init\` writes does) is text, not code.
  const text = 'new URL("../x.toml", import.meta.url)'
  process.stdout.write(JSON.stringify({ version: VERSION, mainUrl: import.meta.url, helperUrl, lazyUrl, lazyDirname, text }))
  return 0
}
`,
}

let root: string

/**
 * Runs the stand-in's `bin/sovra.js` with the launcher's debug log on.
 * @param env extra environment
 */
function sovra(env: Record<string, string> = {}): { report: Report; log: string } {
  const res = spawnSync(process.execPath, [join(root, 'bin', 'sovra.js')], {
    encoding: 'utf8',
    env: { ...process.env, NODE_DEBUG: 'sovra-cli', SOVRA_CLI_TSX: '', ...env },
    timeout: 60_000,
  })
  expect({ status: res.status, stderr: res.status === 0 ? '' : res.stderr }).toEqual({ status: 0, stderr: '' })
  return { report: JSON.parse(res.stdout) as Report, log: res.stderr }
}

/** The bundles under dist/cli. */
const bundles = (): string[] => readdirSync(join(root, 'dist', 'cli')).sort()

/**
 * Writes one of the stand-in's source files.
 * @param path relative to the stand-in's root
 * @param text its content
 */
function write(path: string, text: string): void {
  mkdirSync(join(root, path, '..'), { recursive: true })
  writeFileSync(join(root, path), text)
}

describe('bin/sovra.js (the prebuilt CLI)', () => {
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'sovra-launcher-'))
    for (const file of ['bin/sovra.js', 'bin/cli-bundle.js', 'tsconfig.json']) {
      mkdirSync(join(root, file, '..'), { recursive: true })
      copyFileSync(join(ROOT, file), join(root, file))
    }
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'))
    for (const [path, text] of Object.entries(FILES)) write(path, text)
  })
  afterAll(() => rmSync(root, { recursive: true, force: true }))

  it('builds the bundle on the first call, then runs it without building', () => {
    const first = sovra()
    expect(first.log).toMatch(/no bundle for the current sources \([0-9a-f]{16}\): building it/)
    expect(first.report.version).toBe(1)
    expect(bundles()).toHaveLength(1)
    const second = sovra()
    expect(second.log).toMatch(/running the bundle .*dist\/cli\/[0-9a-f]{16}\/main\.mjs/)
    expect(second.log).not.toMatch(/building/)
    expect(second.report).toEqual(first.report)
  }, 60_000)

  it("keeps import.meta meaning each source file's own location inside the bundle", () => {
    const { report, log } = sovra()
    expect(log).toMatch(/running the bundle/)
    const url = (path: string): string => pathToFileURL(join(root, path)).href
    expect(report).toEqual({
      version: 1,
      mainUrl: url('runtime/cli/main.ts'),
      // Same chunk as main (imported statically): each module still has its own URL.
      helperUrl: url('runtime/cli/helper.ts'),
      lazyUrl: url('runtime/cli/lazy.ts'),
      lazyDirname: join(root, 'runtime', 'cli'),
      text: 'new URL("../x.toml", import.meta.url)',
    })
  }, 60_000)

  it('never runs a stale bundle: an edited source builds a new one, a reverted one finds the old one', () => {
    const before = bundles()
    write('runtime/cli/version.ts', 'export const VERSION: number = 2\n')
    const edited = sovra()
    expect(edited.log).toMatch(/building it/)
    expect(edited.report.version).toBe(2)
    expect(bundles()).toHaveLength(before.length + 1)
    // A new file counts too, even one nothing imports yet.
    write('infra/new-file.ts', 'export {}\n')
    expect(sovra().log).toMatch(/building it/)
    rmSync(join(root, 'infra'), { recursive: true })
    write('runtime/cli/version.ts', FILES['runtime/cli/version.ts'] ?? '')
    const reverted = sovra()
    expect(reverted.log).toMatch(/running the bundle/)
    expect(reverted.report.version).toBe(1)
  }, 120_000)

  it('runs the sources through tsx when no bundle can be built, or when SOVRA_CLI_TSX=1 asks', () => {
    const forced = sovra({ SOVRA_CLI_TSX: '1' })
    expect(forced.log).toMatch(/SOVRA_CLI_TSX=1: running the sources through tsx/)
    expect(forced.report.version).toBe(1)
    // dist/ as a file: nothing can be written under it (a read-only install says EACCES instead).
    write('runtime/cli/version.ts', 'export const VERSION: number = 3\n')
    rmSync(join(root, 'dist'), { recursive: true })
    writeFileSync(join(root, 'dist'), '')
    try {
      const fallback = sovra()
      expect(fallback.log).toMatch(/build failed, running the sources through tsx/)
      expect(fallback.report.version).toBe(3)
    } finally {
      rmSync(join(root, 'dist'))
    }
  }, 60_000)

  it('refuses a bundle that imports a file outside runtime/, infra/ and triggers/ (its edits would go unseen)', () => {
    write('lib/outside.ts', 'export const OUTSIDE = 1\n')
    write('runtime/cli/version.ts', "export { OUTSIDE as VERSION } from '../../lib/outside.ts'\n")
    try {
      const { report, log } = sovra()
      expect(log).toMatch(/build failed, running the sources through tsx: the CLI imports lib\/outside\.ts, outside/)
      expect(report.version).toBe(1)
    } finally {
      write('runtime/cli/version.ts', FILES['runtime/cli/version.ts'] ?? '')
      rmSync(join(root, 'lib'), { recursive: true })
    }
  }, 60_000)

  it('removes old bundles only when unused for an hour, keeping the newest few; npm prepare keeps one', () => {
    const before = bundles().length
    for (const version of [4, 5, 6, 7, 8]) {
      write('runtime/cli/version.ts', `export const VERSION: number = ${version}\n`)
      expect(sovra().report.version).toBe(version)
    }
    // All used just now: a process may still load chunks from any of them.
    expect(bundles()).toHaveLength(before + 5)
    const anHourAgo = new Date(Date.now() - 61 * 60 * 1000)
    for (const name of bundles()) utimesSync(join(root, 'dist', 'cli', name), anHourAgo, anHourAgo)
    write('runtime/cli/version.ts', 'export const VERSION: number = 9\n')
    expect(sovra().report.version).toBe(9)
    expect(bundles()).toHaveLength(4)
    write('runtime/cli/version.ts', 'export const VERSION: number = 10\n')
    const res = spawnSync(process.execPath, [join(root, 'bin', 'cli-bundle.js')], { encoding: 'utf8' })
    expect(res.stdout).toMatch(/^sovra: CLI bundle dist\/cli\/[0-9a-f]{16}\/main\.mjs\n$/)
    expect(bundles()).toHaveLength(1)
    const { report, log } = sovra()
    expect(log).toMatch(/running the bundle/)
    expect(report.version).toBe(10)
  }, 120_000)
})

describe('sovra (this checkout)', () => {
  // Records the CommonJS packages a call loaded (pg, the AWS SDK, pino, prom-client and esbuild are CommonJS).
  const PRELOAD = `data:text/javascript,${encodeURIComponent(
    "import { createRequire } from 'node:module'; const r = createRequire('/'); process.on('exit', () => process.stderr.write('\\nLOADED ' + JSON.stringify(Object.keys(r.cache)) + '\\n'))",
  )}`

  it('loads only the command it runs: --help and config check load no driver, SDK or server package', () => {
    for (const args of [['--help'], ['config', 'check', '--config', join(ROOT, 'wrangler-compat.toml')]]) {
      const res = spawnSync(process.execPath, ['--import', PRELOAD, join(ROOT, 'bin', 'sovra.js'), ...args], {
        encoding: 'utf8',
        env: { ...process.env, NODE_DEBUG: 'sovra-cli', SOVRA_CLI_TSX: '' },
        timeout: 60_000,
      })
      expect(res.status).toBe(0)
      // This checkout's bundle (built now if its sources changed since), not the sources through tsx.
      expect(res.stderr).toMatch(/running the bundle|built /)
      expect(res.stderr).not.toMatch(/through tsx/)
      const loaded = JSON.parse(/\nLOADED (.*)\n/.exec(res.stderr)?.[1] ?? 'null') as string[]
      const heavy = loaded.filter((f) => /node_modules\/(pg|@aws-sdk|pino|prom-client|@smithy)\//.test(f))
      expect({ args, heavy }).toEqual({ args, heavy: [] })
    }
  }, 120_000)
})
