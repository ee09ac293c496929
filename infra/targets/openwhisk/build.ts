import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

import { SovraError } from '../../../runtime/core/errors.ts'
import type { FunctionConfig } from '../../../runtime/config/schema.ts'
import { bundleFunction, buildError, type FunctionBundle } from '../../../runtime/isolate/bundle.ts'

/** OpenWhisk's limit on an action's code (docs/platform-notes.md). */
export const CODE_LIMIT_BYTES = 48 * 1024 * 1024
const ENTRY = fileURLToPath(new URL('../../../runtime/hosts/openwhisk/entry.ts', import.meta.url))
const BINDINGS_DIR = fileURLToPath(new URL('../../../runtime/bindings/', import.meta.url))
const BRIDGE = fileURLToPath(new URL('../../../runtime/hosts/openwhisk/events-bridge.ts', import.meta.url))

/** The name of the events bridge action in a project's package. */
export const BRIDGE_ACTION = '_events'

async function bundleCjs(
  name: string,
  contents: string,
  outDir: string,
  root: string,
): Promise<{ path: string; sha256: string; bytes: number }> {
  let result: esbuild.BuildResult
  try {
    // Reproducible: no temp paths, and the path comments esbuild writes are relative to the project folder.
    result = await esbuild.build({
      stdin: { contents, resolveDir: root, sourcefile: `${name}.action.mjs`, loader: 'js' },
      absWorkingDir: root,
      bundle: true,
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      write: false,
      legalComments: 'none',
      logLevel: 'silent',
      sourcemap: false,
      minify: false,
    })
  } catch (error) {
    throw buildError(name, error, process.cwd())
  }
  const code = result.outputFiles?.[0]?.contents
  if (code === undefined)
    throw new SovraError('ERR_BUILD', `Could not build the OpenWhisk action of "${name}": esbuild produced no output`)
  if (code.byteLength > CODE_LIMIT_BYTES) {
    throw new SovraError(
      'ERR_BUILD',
      `the OpenWhisk action of "${name}" is ${code.byteLength} bytes, over OpenWhisk's code limit of ${CODE_LIMIT_BYTES} bytes (48 MB); move large data to a bucket`,
    )
  }
  mkdirSync(outDir, { recursive: true })
  // Actions are CommonJS; inside a `"type": "module"` project Node would read `<fn>.js` as ESM when required locally.
  writeFileSync(join(outDir, 'package.json'), '{ "type": "commonjs" }\n')
  const path = join(outDir, `${name}.js`)
  writeFileSync(path, code)
  return { path, sha256: createHash('sha256').update(code).digest('hex'), bytes: code.byteLength }
}

/**
 * Builds the events bridge action (`_events.js`): MinIO webhook in, OpenWhisk triggers fired.
 * @param outDir where it goes
 * @param root the project folder
 */
export async function buildBridgeAction(
  outDir: string,
  root: string = process.cwd(),
): Promise<{ path: string; sha256: string; bytes: number }> {
  return bundleCjs(
    BRIDGE_ACTION,
    `import { createEventsBridgeMain, fireTrigger } from ${JSON.stringify(BRIDGE)}\nexport const main = createEventsBridgeMain(fireTrigger)\n`,
    outDir,
    root,
  )
}

/** One built action. */
export interface ActionArtifact {
  function: string
  /** The file to deploy: `<fn>.js` (CommonJS for the nodejs:20 kind, entry point `main`). */
  path: string
  sha256: string
  bytes: number
  /** The function bundle it wraps (the same one the embedded host runs). */
  bundle: FunctionBundle
  kind: 'nodejs:20'
  main: 'main'
}

/**
 * Builds one OpenWhisk action: the function's esbuild bundle (as the embedded host runs it), wrapped with the
 * OpenWhisk entry (runtime/hosts/openwhisk) into one CommonJS file for the `nodejs:20` kind. Fails with ERR_BUILD
 * when the result is over OpenWhisk's 48 MB code limit.
 * @param fn the resolved function
 * @param outDir where `<fn>.js` goes
 * @param root the project folder (paths in the output are relative to it, so builds are reproducible)
 */
export async function buildAction(
  fn: FunctionConfig,
  outDir: string,
  root: string = process.cwd(),
): Promise<ActionArtifact> {
  // The function bundle goes under the project, not under outDir: esbuild writes each input's path (relative to the
  // project) into a comment, so a bundle path that followed --out would change the action's sha256 with it.
  const bundle = await bundleFunction(fn, join(root, '.sovra', 'build', 'actions'))
  const options = {
    name: fn.name,
    version: bundle.version,
    limits: { timeout_ms: fn.limits.timeout_ms, max_body_bytes: fn.limits.max_body_bytes },
  }
  // env: vars and secrets, plus each binding kind's action side (`runtime/bindings/<type>/action.ts`), bundled only
  // for the kinds this function uses so other actions stay small.
  const types = [...new Set(fn.bindings.map((b) => b.type))]
  const contents = [
    `import mod from ${JSON.stringify(bundle.path)}`,
    `import { createActionMain } from ${JSON.stringify(ENTRY)}`,
    ...types.map(
      (t, i) => `import { actionEnv as env${i} } from ${JSON.stringify(join(BINDINGS_DIR, t, 'action.ts'))}`,
    ),
    `export const main = createActionMain(mod, { ...${JSON.stringify(options)}, env: (c) => Object.assign({ ...c.vars, ...c.secrets }${types.map((_, i) => `, env${i}(c, ${JSON.stringify(fn.name)})`).join('')}) })`,
    '',
  ].join('\n')
  const built = await bundleCjs(fn.name, contents, outDir, root)
  return { function: fn.name, ...built, bundle, kind: 'nodejs:20', main: 'main' }
}
