import type { Project } from '../config/resolve.ts'
import type { Db } from '../core/ports.ts'
import type { AdminApp } from '../hosts/app/host-app.ts'
import type { LocalHost } from '../hosts/local/host.ts'
import type { HostLogger } from '../hosts/local/observer.ts'
import { enableControlPlane } from '../../infra/deploy/control-loop.ts'
import { openStore, shareStore } from '../../infra/deploy/project-state.ts'
import { approvalsCommand, approveCommand } from './approvals.ts'
import { auditCommand } from './audit.ts'
import type { Command } from './command.ts'
import { controlAdmin } from './control-app.ts'
import { deployCommand } from './deploy.ts'
import { keysCommand } from './keys.ts'
import { modelsCommand } from './models.ts'
import { signCommand, verifyCommand } from './signing.ts'
import { rolloutCommand } from './rollout.ts'
import { versionsCommand } from './versions.ts'

/** The commands a running host runs for the CLI: the control plane, and what reads its state. */
export const CONTROL_COMMANDS: Readonly<Record<string, Command>> = Object.freeze({
  deploy: deployCommand,
  rollout: rolloutCommand,
  approve: approveCommand,
  approvals: approvalsCommand,
  audit: auditCommand,
  keys: keysCommand,
  models: modelsCommand,
  sign: signCommand,
  verify: verifyCommand,
  versions: versionsCommand,
})

/**
 * The control plane of a running embedded host: the admin endpoint the CLI's control-plane commands run at
 * (`/_sovra/control/run`), the host's store lent to them, and the routing across versions. A host that started
 * without a store (nothing deployed yet, no durable triggers) opens it on the first command, so a first deploy routes
 * without a restart; after each command the routing catches up at once instead of on the next tick.
 * @param options the project, the state override, the host's store if it has one, its logger, and `workingTree`
 *   (`sovra dev`: versions are recorded but not routed; see enableControlPlane)
 */
export function hostControl(options: {
  project: Project
  state: string | undefined
  db: Db | undefined
  log: HostLogger
  workingTree?: boolean
}): { admin: AdminApp; attach(host: LocalHost): Promise<void>; stop(): Promise<void> } {
  const { project, state, log } = options
  let host: LocalHost | undefined
  let db = options.db
  let owned = false
  let loop: ((() => void) & { sync(): Promise<void> }) | undefined
  let unshare = db === undefined ? undefined : shareStore(project, state, db)
  let opening: Promise<void> | undefined
  const start = async (): Promise<void> => {
    if (host === undefined) return
    if (db === undefined) {
      db = await openStore(project, { state })
      owned = true
      unshare = shareStore(project, state, db)
    }
    loop = await enableControlPlane(host, project, db, { state, log, workingTree: options.workingTree === true })
  }
  // Once; a failed attempt is retried by the next command.
  const open = (): Promise<void> =>
    (opening ??= start().catch((error: unknown) => {
      opening = undefined
      throw error
    }))
  const admin = controlAdmin({
    project,
    state,
    commands: CONTROL_COMMANDS,
    prepare: async () => {
      if (loop === undefined) await open()
    },
    after: async () => loop?.sync(),
  })
  return {
    admin,
    async attach(h) {
      host = h
      if (db !== undefined) await open()
    },
    async stop() {
      loop?.()
      unshare?.()
      if (owned) await db?.close()
    },
  }
}
