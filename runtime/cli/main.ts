import { isSovraError } from '../core/errors.ts'
import { ConfigError, formatDiagnostic } from '../config/diagnostics.ts'
import type { Command, Io } from './command.ts'
/** Imports one command's module: a command's dependencies (pg, the AWS SDK, esbuild, ...) load only when it runs. */
export type CommandLoader = () => Promise<Command>

/**
 * Every `sovra` command by name (one file each under runtime/cli), as a loader: `sovra --help` and a command that
 * needs little (`sovra config check`) do not pay for the module graph of every other command (issue 11).
 */
export const COMMANDS: Record<string, CommandLoader> = {
  start: async () => (await import('./start.ts')).startCommand,
  dev: async () => (await import('./start.ts')).devCommand,
  invoke: async () => (await import('./invoke.ts')).invokeCommand,
  config: async () => (await import('./config.ts')).configCommand,
  init: async () => (await import('./init.ts')).initCommand,
  build: async () => (await import('./build.ts')).buildCommand,
  triggers: async () => (await import('./triggers.ts')).triggersCommand,
  trigger: async () => (await import('./triggers.ts')).triggerCommand,
  events: async () => (await import('./events.ts')).eventsCommand,
  objects: async () => (await import('./objects.ts')).objectsCommand,
  pool: async () => (await import('./pool.ts')).poolCommand,
  pools: async () => (await import('./pools.ts')).poolsCommand,
  models: async () => (await import('./models.ts')).modelsCommand,
  deploy: async () => (await import('./deploy.ts')).deployCommand,
  gateway: async () => (await import('./gateway.ts')).gatewayCommand,
  minio: async () => (await import('./minio.ts')).minioCommand,
  keys: async () => (await import('./keys.ts')).keysCommand,
  sign: async () => (await import('./signing.ts')).signCommand,
  verify: async () => (await import('./signing.ts')).verifyCommand,
  audit: async () => (await import('./audit.ts')).auditCommand,
  rollout: async () => (await import('./rollout.ts')).rolloutCommand,
  approve: async () => (await import('./approvals.ts')).approveCommand,
  approvals: async () => (await import('./approvals.ts')).approvalsCommand,
  versions: async () => (await import('./versions.ts')).versionsCommand,
  logs: async () => (await import('./logs.ts')).logsCommand,
}

/** The top-level usage text. */
export const USAGE = `usage: sovra <command> [options]

commands:
  start        serve the project's functions (embedded host)        sovra start [--port 8787] [--host 127.0.0.1]
  dev          like start, and rebuild + reload functions on save   sovra dev
  invoke       run one function once, in an isolate, and print it   sovra invoke <fn> [--method M] [--path P] [--data JSON|@file] [--header k:v]
  config       check the config, or print its JSON Schema           sovra config check | sovra config schema
  build        one OpenWhisk action per function, with sha256s      sovra build [--target openwhisk|local] [--out DIR]
  init         create a project with one function, test and config  sovra init <dir>
  triggers     every function's routes and crons, next 5 cron runs  sovra triggers
  trigger      fire a cron or an object event now                   sovra trigger cron <fn> | sovra trigger object <bucket>/<key>
  events       the object-event queue; replay dead letters          sovra events [--dead] | sovra events replay <id...|--all-dead>
  objects      put, get, list, remove objects in buckets            sovra objects put <bucket>/<key> --file F | get | ls | rm
  pools        inference pools: replicas, queue, p95 vs budget, surge sovra pools [--url URL]
  pool         run one inference replica (on a GPU node, say)       sovra pool serve --pool NAME [--port 8400] [--host H]
  models       tiny demo models; the signed model registry          sovra models make-tiny | push <file> --name N | ls | verify <ref>
  deploy       signed versions (local, --canary N) or OpenWhisk       sovra deploy [fn...] [--canary N] | --target openwhisk [--plan] [--prune]
  gateway      business apps -> the cluster (routes, JWT, invoke)   sovra gateway [--port 8788] [--apihost URL]
  minio        mc commands for MinIO bucket notifications           sovra minio config [--target openwhisk|local] [--out FILE]
  keys         signing keys (ed25519, .sovra/keys, 0600)            sovra keys gen [--name N] | sovra keys ls
  sign         sign a file (DSSE manifest next to it)               sovra sign <file> [--key N] [--kind K]
  verify       verify a signed file or registry reference           sovra verify <file|registry:NAME@sha256:...>
  audit        the append-only audit log, and its chain check       sovra audit [--since T] | sovra audit verify
  rollout      versions: status, promote, rollback, pin, unpin       sovra rollout status <fn> | promote <fn> | rollback <fn>
  approve      approve a pending change, signed with your own key   sovra approve <change-id> --key NAME
  approvals    the changes waiting for approval, across functions   sovra approvals [--json]
  versions     a function's versions: state, digests, approvals     sovra versions <fn> [--json]
  logs         functions' console lines, by invocation; --follow    sovra logs [fn] [--invocation ID] [--since 10m] [--follow] [--json]

every command takes --config FILE (default ./wrangler-compat.toml, else ./wrangler.toml) and --env NAME`

/**
 * Runs the `sovra` command line and returns the exit code: 0 ok, 1 failure, 2 usage error.
 * @param argv arguments after `sovra`
 * @param io where to write (tests capture it)
 */
export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [name, ...rest] = argv
  // `sovra help <command>` is `sovra <command> --help`.
  if (name === 'help' && rest[0] !== undefined) return main([rest[0], '--help'], io)
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.out(USAGE)
    return name === undefined ? 2 : 0
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined
  if (load === undefined) {
    io.err(
      `sovra: unknown command ${JSON.stringify(name)}; valid commands are: ${Object.keys(COMMANDS).join(', ')}\n\n${USAGE}`,
    )
    return 2
  }
  try {
    const command = await load()
    if (wantsHelp(rest)) {
      io.out(`usage: ${command.usage}`)
      return 0
    }
    return await command.run(rest, io)
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const d of error.diagnostics) io.err(formatDiagnostic(d))
      return 1
    }
    if (isSovraError(error)) {
      io.err(`sovra ${name}: ${error.code}: ${error.message}`)
      return error.code === 'ERR_USAGE' ? 2 : 1
    }
    io.err(`sovra ${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
    return 1
  }
}

/**
 * Whether the arguments after the command name ask for its usage: `help` first, or `--help`/`-h` anywhere before
 * `--`. Anywhere, so `sovra objects put --help` and `sovra rollout promote fn -h` answer with the usage instead of
 * running or reading the flag as a subcommand; a flag's value never is `-h` (node's parseArgs refuses a value that
 * starts with `-` unless written `--flag=-h`, which is one argument).
 * @param args the arguments after the command name
 */
function wantsHelp(args: string[]): boolean {
  if (args[0] === 'help') return true
  for (const arg of args) {
    if (arg === '--') return false
    if (arg === '--help' || arg === '-h') return true
  }
  return false
}

const defaultIo = {
  out: (s: string) => void process.stdout.write(`${s}\n`),
  err: (s: string) => void process.stderr.write(`${s}\n`),
}
