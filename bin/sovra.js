#!/usr/bin/env node
// The `sovra` command. It runs the prebuilt bundle of the TypeScript sources (bin/cli-bundle.js: built by `npm
// install`, rebuilt here whenever a source file changed), so a call does not transpile the CLI again (issue 11);
// without a bundle it runs the sources through tsx's loader. Isolates use neither: they run plain esbuild bundles.
import { currentBundle } from './cli-bundle.js'

// A reader that closes the pipe early (`sovra events | head -1`) ends the process quietly with 141, what a shell
// reports for a process killed by SIGPIPE (128 + 13), as coreutils do under `set -o pipefail` (issue 11, R11). Node
// ignores SIGPIPE, so the next write would otherwise throw EPIPE with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code !== 'EPIPE') throw error
    process.exit(141)
  })
}

const bundle = await currentBundle()
let main
if (bundle === undefined) {
  const { register } = await import('tsx/esm/api')
  register()
  ;({ main } = await import('../runtime/cli/main.ts'))
} else {
  // Stack traces then name the .ts sources, as they do under tsx.
  process.setSourceMapsEnabled(true)
  ;({ main } = await import(bundle))
}
process.exitCode = await main(process.argv.slice(2))
