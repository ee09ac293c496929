#!/usr/bin/env node
// The `sovra` command. Sources are TypeScript run through tsx's loader, so there is no build step between
// `npm install` and `npm start`. Isolates do not use this loader: they run plain esbuild bundles.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../runtime/cli/main.ts')
process.exitCode = await main(process.argv.slice(2))
