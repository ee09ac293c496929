import { isSovraError } from '../core/errors.ts'
import { ConfigError, formatDiagnostic } from '../config/diagnostics.ts'
import type { Command, Io } from './command.ts'
import { startCommand, devCommand } from './start.ts'
import { invokeCommand } from './invoke.ts'
import { configCommand } from './config.ts'
import { initCommand } from './init.ts'
import { buildCommand } from './build.ts'
import { triggerCommand, triggersCommand } from './triggers.ts'
import { eventsCommand } from './events.ts'
import { objectsCommand } from './objects.ts'
import { poolCommand } from './pool.ts'
import { poolsCommand } from './pools.ts'
import { modelsCommand } from './models.ts'
import { deployCommand } from './deploy.ts'
import { gatewayCommand } from './gateway.ts'
import { minioCommand } from './minio.ts'
import { keysCommand } from './keys.ts'
import { signCommand, verifyCommand } from './signing.ts'
import { auditCommand } from './audit.ts'
import { approveCommand, rolloutCommand } from './rollout.ts'

/** Every `sovra` command by name (one file each under runtime/cli). */
export const COMMANDS: Record<string, Command> = {
  start: startCommand,
  dev: devCommand,
  invoke: invokeCommand,
  config: configCommand,
  init: initCommand,
  build: buildCommand,
  triggers: triggersCommand,
  trigger: triggerCommand,
  events: eventsCommand,
  objects: objectsCommand,
  pool: poolCommand,
  pools: poolsCommand,
  models: modelsCommand,
  deploy: deployCommand,
  gateway: gatewayCommand,
  minio: minioCommand,
  keys: keysCommand,
  sign: signCommand,
  verify: verifyCommand,
  audit: auditCommand,
  rollout: rolloutCommand,
  approve: approveCommand,
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
  approve      approve a pending change (risk medium: 1, high: 2)   sovra approve <change-id>

every command takes --config FILE (default ./wrangler-compat.toml, else ./wrangler.toml) and --env NAME`

/**
 * Runs the `sovra` command line and returns the exit code: 0 ok, 1 failure, 2 usage error.
 * @param argv arguments after `sovra`
 * @param io where to write (tests capture it)
 */
export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.out(USAGE)
    return name === undefined ? 2 : 0
  }
  const command = COMMANDS[name]
  if (command === undefined) {
    io.err(
      `sovra: unknown command ${JSON.stringify(name)}; valid commands are: ${Object.keys(COMMANDS).join(', ')}\n\n${USAGE}`,
    )
    return 2
  }
  // `sovra <command> --help` (or `-h`, `help`) prints the command's usage for every command, including those whose
  // first argument is a subcommand (objects, keys, trigger, ...), which would otherwise read it as one.
  if (rest[0] === '--help' || rest[0] === '-h' || rest[0] === 'help') {
    io.out(`usage: ${command.usage}`)
    return 0
  }
  try {
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

const defaultIo = {
  out: (s: string) => void process.stdout.write(`${s}\n`),
  err: (s: string) => void process.stderr.write(`${s}\n`),
}
