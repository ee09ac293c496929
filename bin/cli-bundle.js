// The prebuilt `sovra` CLI: one esbuild bundle of runtime/cli/main.ts and everything it imports (packages stay
// external; code splitting keeps each command's chunk lazy), under dist/cli/<fingerprint>/, where the fingerprint is
// a hash of every source file's content. A changed source means a new fingerprint, so the CLI never runs code older
// than the sources: bin/sovra.js rebuilds (or falls back to tsx) instead. `npm install` builds it once (`prepare`:
// `node bin/cli-bundle.js`), and so does `npm pack`. Plain JavaScript: it runs before any TypeScript loader.
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { setInterval } from 'node:timers'
import { fileURLToPath } from 'node:url'
import { debuglog } from 'node:util'

/** The sovra checkout or installed package this file belongs to. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** The folders whose files the CLI is built from (their content is the fingerprint). */
export const SOURCE_DIRS = ['runtime', 'infra', 'triggers']
/** The CLI's entry, relative to the root. */
const ENTRY = 'runtime/cli/main.ts'
/** How many bundles dist/cli keeps at least, however old (the newest by last use). */
const KEEP = 4
/**
 * A bundle used within this long is never removed: a running `sovra start` may still load a lazy chunk from its own
 * (an engine, a command's module), and it marks its bundle as used every {@link IN_USE_MS} / 6 while it runs.
 */
const IN_USE_MS = 60 * 60 * 1000

/** `NODE_DEBUG=sovra-cli sovra ...` says which CLI ran: the bundle, a fresh build, or the sources through tsx. */
export const debug = debuglog('sovra-cli')

/**
 * Hashes the content of every file under the source folders, this file (the build options) and tsconfig.json, in
 * path order.
 * Content, not mtimes: a git checkout, a copy or `npm pack` (which resets mtimes) keeps the fingerprint when nothing
 * changed, and any edit changes it.
 * @param {string} root the sovra root
 * @returns {string} 16 hex digits
 */
export function fingerprint(root) {
  const hash = createHash('sha256')
  const files = [join(root, 'bin', 'cli-bundle.js'), join(root, 'tsconfig.json')].filter((f) => existsSync(f))
  for (const dir of SOURCE_DIRS) listFiles(join(root, dir), files)
  for (const file of files) {
    hash.update(`${relative(root, file)}\0`)
    hash.update(readFileSync(file))
    hash.update('\0')
  }
  return hash.digest('hex').slice(0, 16)
}

/**
 * Adds every file under a folder to a list, sorted per folder so the order never depends on the file system.
 * @param {string} dir the folder (a missing one adds nothing)
 * @param {string[]} out the list
 */
function listFiles(dir, out) {
  let entries
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch {
    return
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const e of entries) {
    if (e.isDirectory()) listFiles(join(dir, e.name), out)
    else if (e.isFile()) out.push(join(dir, e.name))
  }
}

/**
 * The folder of the bundle built from sources with this fingerprint.
 * @param {string} root the sovra root
 * @param {string} print the fingerprint
 */
export function bundleDir(root, print) {
  return join(root, 'dist', 'cli', print)
}

/**
 * Builds the CLI bundle for the current sources into dist/cli/<fingerprint>/ (into a temporary folder renamed into
 * place, so a process never loads a half-written bundle and two processes building at once both end with a whole
 * one), then removes old bundles no process used for an hour (the newest few stay).
 * @param {string} root the sovra root
 * @param {string} [print] the sources' fingerprint (computed when absent)
 * @returns {Promise<string>} the path of the bundle's entry module
 */
export async function buildBundle(root, print = fingerprint(root)) {
  const esbuild = await import('esbuild')
  const out = bundleDir(root, print)
  const tmp = `${out}.tmp-${process.pid}-${Date.now()}`
  // An installed package may ship without tsconfig.json: the one setting that changes the output is this.
  const tsconfig = join(root, 'tsconfig.json')
  const tsconfigRaw = existsSync(tsconfig)
    ? readFileSync(tsconfig, 'utf8')
    : JSON.stringify({ compilerOptions: { verbatimModuleSyntax: true } })
  try {
    const { metafile } = await esbuild.build({
      absWorkingDir: root,
      entryPoints: { main: join(root, ENTRY) },
      outdir: tmp,
      outExtension: { '.js': '.mjs' },
      chunkNames: '[name]-[hash]',
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      // Stack traces name the .ts files (bin/sovra.js turns source maps on); class names survive renaming.
      sourcemap: 'linked',
      sourcesContent: false,
      keepNames: true,
      logLevel: 'silent',
      plugins: [sourceUrls(esbuild, out, tsconfigRaw)],
      metafile: true,
    })
    // A module outside the fingerprinted folders could change without a rebuild: refuse such a bundle (the CLI
    // then runs the sources through tsx) rather than ever run a stale one.
    const outside = Object.keys(metafile.inputs).filter(
      (input) => !input.split('/').includes('node_modules') && !SOURCE_DIRS.some((d) => input.startsWith(`${d}/`)),
    )
    if (outside.length > 0) {
      throw new Error(
        `the CLI imports ${outside.join(', ')}, outside ${SOURCE_DIRS.join('/, ')}/: add its folder to SOURCE_DIRS in bin/cli-bundle.js`,
      )
    }
    try {
      renameSync(tmp, out)
    } catch (error) {
      // Another process built the same sources first: its bundle is as good as ours.
      if (!existsSync(join(out, 'main.mjs'))) throw error
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
  prune(root, print, KEEP)
  return join(out, 'main.mjs')
}

/**
 * An esbuild plugin that keeps `import.meta.url` (and `.filename`, `.dirname`) meaning the source file's own
 * location inside the bundle, where it would otherwise be the chunk's: sources find files next to them by it (the
 * isolate's worker-main.ts, core/index.ts, the SQL migrations, bin/sovra.js for replica processes). The value is
 * computed relative to the chunk, so the package can move after it was built. Rewritten with esbuild's `define`
 * (the syntax tree, not the text): an `import.meta.url` inside a string, such as the test file `sovra init`
 * writes, stays as it is.
 * @param {typeof import('esbuild')} esbuild
 * @param {string} outdir the bundle's final folder
 * @param {string} tsconfigRaw tsconfig.json's text (verbatimModuleSyntax decides which imports stay)
 * @returns {import('esbuild').Plugin}
 */
function sourceUrls(esbuild, outdir, tsconfigRaw) {
  return {
    name: 'sovra-source-urls',
    setup(build) {
      build.onLoad({ filter: /\.[cm]?ts$/ }, async (args) => {
        if (args.path.includes(`${sep}node_modules${sep}`)) return undefined
        const text = await readFile(args.path, 'utf8')
        if (!text.includes('import.meta')) return undefined
        const { code } = await esbuild.transform(text, {
          loader: 'ts',
          format: 'esm',
          target: 'node20',
          sourcefile: args.path,
          sourcemap: 'inline',
          tsconfigRaw,
          define: {
            'import.meta.url': '__sovraSourceUrl',
            'import.meta.filename': '__sovraSourceFilename',
            'import.meta.dirname': '__sovraSourceDirname',
          },
        })
        // Prepended to the first line, no newline: the inline source map stays right for every other line.
        const url = `new URL(${JSON.stringify(relative(outdir, args.path).split(sep).join('/'))}, import.meta.url)`
        let prelude = `const __sovraSourceUrl = ${url}.href;`
        if (/import\.meta\.(filename|dirname)/.test(text)) {
          prelude +=
            `import { fileURLToPath as __sovraToPath } from 'node:url';` +
            `import { dirname as __sovraDirname } from 'node:path';` +
            `const __sovraSourceFilename = __sovraToPath(${url});` +
            `const __sovraSourceDirname = __sovraDirname(__sovraSourceFilename);`
        }
        return { contents: prelude + code, loader: 'js', resolveDir: join(args.path, '..') }
      })
    },
  }
}

/**
 * Removes older bundles beyond the newest few (by last use: bin/sovra.js touches the one it runs) that no process
 * used within {@link IN_USE_MS}.
 * @param {string} root the sovra root
 * @param {string} current the fingerprint never to remove
 * @param {number} keep how many bundles to keep whatever their age, the current one included
 * @param {number} [inUseMs] how recently used a bundle beyond those may be and still be removed
 */
function prune(root, current, keep, inUseMs = IN_USE_MS) {
  const dir = join(root, 'dist', 'cli')
  const old = readdirSync(dir)
    .filter((name) => name !== current && !name.includes('.tmp-'))
    .map((name) => ({ name, used: statSync(join(dir, name)).mtimeMs }))
    .sort((a, b) => b.used - a.used)
  for (const { name, used } of old.slice(keep - 1)) {
    if (Date.now() - used >= inUseMs) rmSync(join(dir, name), { recursive: true, force: true })
  }
}

/**
 * The entry module of a bundle built from the current sources: the existing one, else a fresh build; undefined when
 * no bundle can be had (the build failed: a syntax error, a read-only install) or `SOVRA_CLI_TSX=1` asks for the
 * sources, and the caller runs them through tsx.
 * @param {string} [root] the sovra root
 * @returns {Promise<string | undefined>}
 */
export async function currentBundle(root = ROOT) {
  if (process.env.SOVRA_CLI_TSX === '1') {
    debug('SOVRA_CLI_TSX=1: running the sources through tsx')
    return undefined
  }
  const print = fingerprint(root)
  const entry = join(bundleDir(root, print), 'main.mjs')
  if (existsSync(entry)) {
    debug('running the bundle %s', entry)
    keepAlive(bundleDir(root, print))
    return entry
  }
  debug('no bundle for the current sources (%s): building it', print)
  try {
    mkdirSync(join(root, 'dist', 'cli'), { recursive: true })
    const built = await buildBundle(root, print)
    // A source saved while esbuild read the tree: the bundle may hold neither version, so it must not be the one
    // the fingerprint names. Rare (an editor saving during the ~1 s build); the sources are the truth then.
    if (fingerprint(root) !== print) {
      rmSync(bundleDir(root, print), { recursive: true, force: true })
      throw new Error('a source file changed during the build')
    }
    debug('built %s', built)
    keepAlive(bundleDir(root, print))
    return built
  } catch (error) {
    debug('build failed, running the sources through tsx: %s', error instanceof Error ? error.message : error)
    return undefined
  }
}

/**
 * Marks a bundle as used now and, while this process runs, every few minutes, so pruning leaves it alone (a
 * read-only install cannot be marked, and is never pruned either). The timer never keeps the process alive.
 * @param {string} dir the bundle's folder
 */
function keepAlive(dir) {
  const touch = () => {
    try {
      const now = new Date()
      utimesSync(dir, now, now)
    } catch {
      // read-only or gone: nothing to keep
    }
  }
  touch()
  setInterval(touch, IN_USE_MS / 6).unref()
}

// `node bin/cli-bundle.js` (npm's `prepare`, so `npm install`/`npm ci` and `npm pack` run it): build the bundle for
// the current sources and drop every other one (a packed tarball carries one). A failure warns and exits 0, so an
// install never fails for it: the CLI then builds on first use or runs the sources through tsx.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const print = fingerprint(ROOT)
    mkdirSync(join(ROOT, 'dist', 'cli'), { recursive: true })
    const entry = existsSync(join(bundleDir(ROOT, print), 'main.mjs'))
      ? join(bundleDir(ROOT, print), 'main.mjs')
      : await buildBundle(ROOT, print)
    prune(ROOT, print, 1, 0)
    process.stdout.write(`sovra: CLI bundle ${relative(ROOT, entry)}\n`)
  } catch (error) {
    process.stderr.write(
      `sovra: warning: the CLI bundle was not built (the CLI will run its TypeScript sources through tsx): ${
        error instanceof Error ? error.message : String(error)
      }\n`,
    )
  }
}
