import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SovraError } from '../core/errors.ts'
import { parseCommandArgs } from './args.ts'
import type { Command } from './command.ts'

const USAGE = 'sovra init <dir> [--name NAME]'
/** The sovra checkout this command runs from: a scaffold depends on it by path until sovra is on a registry. */
const SOVRA_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The dev tools a scaffold needs, at the versions sovra itself is tested with (its package.json). */
export const SCAFFOLD_DEV_TOOLS = ['@types/node', 'typescript', 'vitest'] as const

/** The versions of {@link SCAFFOLD_DEV_TOOLS} in sovra's own package.json. */
export function devToolVersions(): Record<(typeof SCAFFOLD_DEV_TOOLS)[number], string> {
  const pkg = JSON.parse(readFileSync(join(SOVRA_ROOT, 'package.json'), 'utf8')) as {
    devDependencies?: Record<string, string>
  }
  const versions = Object.fromEntries(
    SCAFFOLD_DEV_TOOLS.map((tool) => {
      const version = pkg.devDependencies?.[tool]
      if (version === undefined)
        throw new SovraError('ERR_INTERNAL', `sovra's package.json has no devDependencies[${JSON.stringify(tool)}]`)
      return [tool, version]
    }),
  )
  return versions as Record<(typeof SCAFFOLD_DEV_TOOLS)[number], string>
}

/**
 * The files of a new project: one function, its test, config, tsconfig and vitest config.
 * @param name the project name
 * @param sovraDependency how package.json refers to sovra
 * @param tools the dev tools' versions (default: those sovra is tested with)
 */
export function scaffoldFiles(
  name: string,
  sovraDependency: string,
  tools: Record<(typeof SCAFFOLD_DEV_TOOLS)[number], string> = devToolVersions(),
): Record<string, string> {
  return {
    'package.json': `${JSON.stringify(
      {
        name,
        private: true,
        type: 'module',
        scripts: {
          dev: 'sovra dev',
          start: 'sovra start',
          // The tsconfig names types: ["node"], hence @types/node below; without it tsc fails on a fresh install.
          typecheck: 'tsc --noEmit',
          test: 'tsc --noEmit && vitest run',
          build: 'sovra build',
        },
        devDependencies: { sovra: sovraDependency, ...tools },
      },
      null,
      2,
    )}\n`,
    'wrangler-compat.toml': `# sovra project config: wrangler's keys plus sovra's tables. Check it with: npx sovra config check
#:schema ./node_modules/sovra/schema/wrangler-compat.schema.json
name = "${name}"
compatibility_date = "2026-11-01"

[[functions]]
name = "hello"
main = "functions/hello/index.ts"
routes = ["/hello"]
tier = "internal"

[functions.vars]
GREETING = "Hello"

[functions.limits]
timeout_ms = 10000
memory_mb = 128

# State: fs buckets and the embedded PGlite database live in .sovra/state next to this file (git-ignored).
# Every command takes --state DIR to keep them elsewhere, e.g. on a data disk: npx sovra start --state /srv/${name}/state
# (give the CLI the same --state as the running host). To move only part of it:
# [storage]
# dir = "/srv/${name}/buckets"                  # fs buckets; or driver = "s3" with endpoint = "http://minio:9000"
# [database]
# url = "postgres://sovra@db.internal/sovra"    # or SOVRA_DATABASE_URL: a PostgreSQL server instead of PGlite
`,
    'functions/hello/index.ts': `import { defineFunction } from 'sovra'

interface Env {
  GREETING: string
}

/** Greets the caller: GET /hello?name=Ada -> "Hello, Ada!" */
export default defineFunction<Env>({
  fetch(request, env) {
    const name = new URL(request.url).searchParams.get('name') ?? 'world'
    return new Response(\`\${env.GREETING}, \${name}!\`, { headers: { 'content-type': 'text/plain; charset=utf-8' } })
  },
})
`,
    'test/hello.test.ts': `import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createExecutionContext, startTestHost, type TestHost } from 'sovra/testing'
import hello from '../functions/hello/index.ts'

describe('hello', () => {
  it('greets by name (handler called directly)', async () => {
    const res = await hello.fetch!(new Request('http://local/hello?name=Ada'), { GREETING: 'Hi' }, createExecutionContext())
    expect(await res.text()).toBe('Hi, Ada!')
  })

  describe('through the embedded host (real isolates)', () => {
    let host: TestHost
    beforeAll(async () => {
      host = await startTestHost({ config: new URL('../wrangler-compat.toml', import.meta.url) })
    })
    afterAll(() => host.close())

    it('answers on its route with the configured greeting', async () => {
      const res = await host.fetch('/hello?name=Grace')
      expect(res.status).toBe(200)
      expect(await res.text()).toBe('Hello, Grace!')
    })

    it('404s elsewhere', async () => {
      expect((await host.fetch('/nope')).status).toBe(404)
    })
  })
})
`,
    'vitest.config.ts': `import { defineConfig } from 'vitest/config'

// sovra ships TypeScript sources: let vitest transform them instead of handing them to Node.
export default defineConfig({ test: { server: { deps: { inline: ['sovra'] } }, testTimeout: 20000 } })
`,
    'tsconfig.json': `${JSON.stringify(
      {
        compilerOptions: {
          target: 'es2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          lib: ['es2023', 'dom', 'dom.iterable'],
          types: ['node'],
          strict: true,
          noUncheckedIndexedAccess: true,
          exactOptionalPropertyTypes: true,
          verbatimModuleSyntax: true,
          allowImportingTsExtensions: true,
          noEmit: true,
          skipLibCheck: true,
        },
        include: ['functions', 'test'],
      },
      null,
      2,
    )}\n`,
    // Secrets files are ignored (.dev.vars, .dev.vars.<env>); the example that documents them is committed.
    '.gitignore': 'node_modules/\n.sovra/\ndist/\n.dev.vars\n.dev.vars.*\n!.dev.vars.example\n',
    '.dev.vars.example':
      '# Secrets for local runs: copy to .dev.vars (never commit it). Or set SOVRA_SECRET_<NAME>.\n# API_TOKEN=change-me\n',
  }
}

/** `sovra init <dir>`: scaffolds a project; refuses a folder that is not empty. */
export const initCommand: Command = {
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(
      args,
      { name: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      USAGE,
      1,
    )
    if (values.help) return (io.out(USAGE), 0)
    const target = positionals[0]
    if (target === undefined) throw new SovraError('ERR_USAGE', `missing the folder to create\nusage: ${USAGE}`)
    const dir = resolve(target)
    if (existsSync(dir) && readdirSync(dir).length > 0) {
      throw new SovraError('ERR_USAGE', `${dir} is not empty; sovra init only writes into a new or empty folder`)
    }
    const name =
      (values.name ?? basename(dir))
        .toLowerCase()
        .replace(/[^a-z0-9_-]/g, '-')
        .replace(/^[^a-z0-9]+/, '') || 'app'
    for (const [file, text] of Object.entries(scaffoldFiles(name, `file:${relative(dir, SOVRA_ROOT) || '.'}`))) {
      const path = join(dir, file)
      mkdirSync(resolve(path, '..'), { recursive: true })
      writeFileSync(path, text)
    }
    io.out(
      `created ${dir}\n\nnext:\n  cd ${relative(process.cwd(), dir) || '.'}\n  npm install\n  npx sovra dev          # http://127.0.0.1:8787/hello?name=Ada\n  npx sovra invoke hello\n  npm test`,
    )
    return 0
  },
}
