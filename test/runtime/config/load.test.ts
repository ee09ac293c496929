import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { loadConfig, parseConfig } from '../../../runtime/config/load.ts'
import { ConfigError, type Diagnostic } from '../../../runtime/config/diagnostics.ts'
import { configJsonSchema, JSON_SCHEMA_FILE } from '../../../runtime/config/json-schema.ts'
import { parseDevVars } from '../../../runtime/config/secrets.ts'
import { ROOT, tempProject } from '../../helpers.ts'

const FN = 'export default { fetch() { return new Response("ok") } }\n'

function diagnosticsOf(fn: () => unknown): Diagnostic[] {
  try {
    fn()
  } catch (error) {
    if (error instanceof ConfigError) return error.diagnostics
    throw error
  }
  throw new Error('expected a ConfigError')
}

/** The error `fn` throws; fails the test when it returns instead. */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn()
  } catch (error) {
    return error
  }
  throw new Error('expected it to throw')
}

describe('parseConfig', () => {
  it('names file, line and column of a TOML syntax error', () => {
    const [d] = diagnosticsOf(() =>
      parseConfig('name = "a"\nroutes = [\n  "/x",\nmain = 1\n', '/p/wrangler-compat.toml'),
    )
    expect(d).toMatchObject({ severity: 'error', file: '/p/wrangler-compat.toml', line: 4, column: expect.any(Number) })
    expect(d?.message).toMatch(/TOML syntax error/)
  })

  it('names the key path, the value received and what is valid, for every error at once', () => {
    const ds = diagnosticsOf(() =>
      parseConfig(
        `
name = "Bad Name"
[limits]
timeout_ms = -5
[[functions]]
name = "a"
main = "a.js"
[functions.isolates]
max = "many"
`,
        'c.toml',
      ),
    )
    const byPath = Object.fromEntries(ds.map((d) => [d.path, d.message]))
    expect(byPath['name']).toMatch(/lowercase letters.*received "Bad Name"/)
    expect(byPath['limits.timeout_ms']).toMatch(/expected >=1, received -5/)
    expect(byPath['functions[0].isolates.max']).toMatch(/expected number, received "many"/)
  })

  it('warns about unknown keys with a suggestion, without failing', () => {
    const { warnings } = parseConfig(
      'name = "a"\nmain = "a.js"\ncompatability_date = "2025-01-01"\n[limits]\ntimeout = 3\n',
      'c.toml',
    )
    expect(warnings.map((w) => `${w.path}: ${w.message}`)).toEqual([
      'compatability_date: unknown key "compatability_date" is ignored; did you mean "compatibility_date"?',
      'limits.timeout: unknown key "timeout" is ignored',
    ])
  })
})

describe('loadConfig', () => {
  it('loads a plain single-worker wrangler.toml as a one-function project', () => {
    const dir = tempProject({
      'wrangler.toml':
        'name = "worker"\nmain = "src/index.js"\ncompatibility_date = "2025-01-01"\nroute = "example.com/api/*"\n[vars]\nGREETING = "hi"\n',
      'src/index.js': FN,
    })
    const { project, warnings } = loadConfig({ cwd: dir, processEnv: {} })
    expect(project.functions).toHaveLength(1)
    const [fn] = project.functions
    expect(fn).toMatchObject({
      name: 'worker',
      main: join(dir, 'src/index.js'),
      routes: ['/api/*'],
      vars: { GREETING: 'hi' },
      tier: 'internal',
    })
    expect(fn?.limits).toEqual({ timeout_ms: 30000, memory_mb: 256, max_body_bytes: 1048576 })
    expect(warnings.map((w) => w.message)).toEqual([expect.stringMatching(/host "example.com" is ignored/)])
  })

  it('prefers wrangler-compat.toml and lets [[functions]] inherit top-level keys', () => {
    const dir = tempProject({
      'wrangler-compat.toml': `
name = "proj"
tier = "confidential"
[vars]
SHARED = "1"
[limits]
timeout_ms = 5000
[[functions]]
name = "a"
main = "a.js"
routes = ["/a"]
[[functions]]
name = "b"
main = "b.js"
tier = "public"
[functions.limits]
memory_mb = 64
`,
      'wrangler.toml': 'this is not read',
      'a.js': FN,
      'b.js': FN,
    })
    const { project } = loadConfig({ cwd: dir, processEnv: {} })
    const [a, b] = project.functions
    expect(a).toMatchObject({
      name: 'a',
      tier: 'confidential',
      vars: { SHARED: '1' },
      limits: { timeout_ms: 5000, memory_mb: 256 },
    })
    expect(b).toMatchObject({ name: 'b', tier: 'public', vars: { SHARED: '1' }, routes: [] })
    // A function's own [limits] table replaces the inherited one, as wrangler's environments do.
    expect(b?.limits).toEqual({ timeout_ms: 30000, memory_mb: 64, max_body_bytes: 1048576 })
  })

  it('applies [env.NAME] with wrangler semantics: vars are not inherited, others are', () => {
    const dir = tempProject({
      'wrangler-compat.toml': `
name = "w"
main = "a.js"
routes = ["/a"]
[vars]
MODE = "dev"
KEEP = "top"
[env.production]
routes = ["/prod"]
[env.production.vars]
MODE = "prod"
`,
      'a.js': FN,
    })
    const dev = loadConfig({ cwd: dir, processEnv: {} }).project.functions[0]
    const prod = loadConfig({ cwd: dir, env: 'production', processEnv: {} }).project.functions[0]
    expect(dev).toMatchObject({ routes: ['/a'], vars: { MODE: 'dev', KEEP: 'top' } })
    expect(prod).toMatchObject({ routes: ['/prod'], vars: { MODE: 'prod' } })
    expect(prod?.vars).not.toHaveProperty('KEEP')
    expect(diagnosticsOf(() => loadConfig({ cwd: dir, env: 'staging', processEnv: {} }))[0]?.message).toMatch(
      /unknown environment "staging"; valid environments are: production/,
    )
  })

  it('reports every semantic problem: missing main file, unknown tier, duplicate route, reserved route, min > max', () => {
    const dir = tempProject({
      'wrangler-compat.toml': `
[[functions]]
name = "a"
main = "missing.js"
routes = ["/same"]
tier = "secret"
[[functions]]
name = "b"
main = "b.js"
routes = ["/same", "/_sovra/x"]
[functions.isolates]
min = 3
max = 1
`,
      'b.js': FN,
    })
    const messages = diagnosticsOf(() => loadConfig({ cwd: dir, processEnv: {} }))
      .filter((d) => d.severity === 'error')
      .map((d) => `${d.path}: ${d.message}`)
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^functions\[0\]\.main: entry module not found: .*missing\.js/),
        expect.stringMatching(
          /^functions\[0\]\.tier: unknown tier "secret"; valid tiers are: public, internal, confidential, restricted/,
        ),
        expect.stringMatching(/^functions\[1\]\.routes\[1\]: route "\/_sovra\/x" is under \/_sovra\//),
        expect.stringMatching(/^functions\[1\]\.isolates: isolates\.min \(3\) is above isolates\.max \(1\)/),
        expect.stringMatching(/^routes: route "\/same" is claimed by both function "a" and function "b"/),
      ]),
    )
  })

  it('says where it looked when there is no config, and names a missing --config file', () => {
    const dir = tempProject({})
    expect(() => loadConfig({ cwd: dir })).toThrowError(
      /No config file in .*: looked for wrangler-compat.toml and wrangler.toml/,
    )
    expect(() => loadConfig({ cwd: dir, configPath: 'nope.toml' })).toThrowError(/Config file not found: .*nope\.toml/)
  })
})

describe('secrets', () => {
  const files = {
    'wrangler-compat.toml': `
[[functions]]
name = "a"
main = "a.js"
secrets = ["API_KEY"]
[[functions]]
name = "b"
main = "a.js"
`,
    'a.js': FN,
    '.dev.vars': '# local secrets\nAPI_KEY="from-file"\nOTHER=plain # comment\nexport MULTI="l1\\nl2"\n',
  }

  it('reads .dev.vars, lets SOVRA_SECRET_* win, and gives a function only the secrets it declares', () => {
    const dir = tempProject(files)
    const { project } = loadConfig({
      cwd: dir,
      processEnv: { SOVRA_SECRET_API_KEY: 'from-env', SOVRA_SECRET_EXTRA: 'x' },
    })
    expect(project.functions[0]?.secrets).toEqual(['API_KEY'])
    expect(project.secrets.pick(['API_KEY'])).toEqual({ API_KEY: 'from-env' })
    // No declaration: every secret, as wrangler hands all of .dev.vars to the worker.
    expect(project.functions[1]?.secrets).toEqual(['API_KEY', 'EXTRA', 'MULTI', 'OTHER'])
    expect(project.secrets.pick(['OTHER', 'MULTI'])).toEqual({ OTHER: 'plain', MULTI: 'l1\nl2' })
  })

  it('never shows a secret value in JSON, inspect or string form', () => {
    const dir = tempProject(files)
    const { project } = loadConfig({ cwd: dir, processEnv: { SOVRA_SECRET_API_KEY: 'sup3r-s3cret' } })
    const printed = [JSON.stringify(project), inspect(project, { depth: 10 }), String(project.secrets)].join('\n')
    expect(printed).toContain('API_KEY')
    expect(printed).not.toContain('sup3r-s3cret')
    expect(printed).not.toContain('from-file')
  })

  it('fails when a declared secret is missing, saying how to set it', () => {
    const dir = tempProject({ ...files, '.dev.vars': '' })
    const [d] = diagnosticsOf(() => loadConfig({ cwd: dir, processEnv: {} }))
    expect(d?.message).toMatch(
      /requires secret "API_KEY", which is not set; put API_KEY=\.\.\. in \.dev\.vars .* or set SOVRA_SECRET_API_KEY/,
    )
  })

  it('rejects a malformed .dev.vars line without echoing it', () => {
    for (const [text, where] of [
      ['GOOD=1\nthis-is-a-secret-value\n', '.dev.vars:2'],
      ['this-is-a-secret-value', '.dev.vars:1'],
      ['export this-is-a-secret-value', '.dev.vars:1'],
    ] as const) {
      const error = thrownBy(() => parseDevVars(text, '.dev.vars'))
      expect(error).toMatchObject({
        code: 'ERR_CONFIG',
        message: expect.stringContaining(`${where}: expected KEY=value`),
      })
      // Nowhere in the error: not its message, stack, cause or fields.
      expect(inspect(error, { depth: 10 })).not.toContain('secret-value')
    }
  })
})

describe('JSON Schema', () => {
  it('is generated from the valibot schema and the committed copy is up to date', () => {
    const schema = configJsonSchema() as { properties: Record<string, unknown> }
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['name', 'main', 'routes', 'functions', 'limits', 'isolates', 'tier', 'env']),
    )
    const committed = JSON.parse(readFileSync(join(ROOT, JSON_SCHEMA_FILE), 'utf8'))
    expect(committed, 'run: npx sovra config schema --out schema/wrangler-compat.schema.json').toEqual(schema)
  })
})
