import { randomUUID } from 'node:crypto'

import { SovraError } from '../../runtime/core/errors.ts'
import type { Db } from '../../runtime/core/ports.ts'
import type { RoutingState } from '../../triggers/http/version-select.ts'
import { auditLog } from './audit.ts'
import { changeApprovals } from './change-approvals.ts'
import { applyChange, beforeOf, LOCAL_TARGET, readChange } from './changes.ts'

export { LOCAL_TARGET }

/** Approvals a change needs by risk class (distinct approvers, never the author). */
export const REQUIRED_APPROVALS = { low: 0, medium: 1, high: 2 } as const
export type Risk = keyof typeof REQUIRED_APPROVALS

/** An immutable version of a function. */
export interface VersionRecord {
  id: string
  function: string
  bundleSha256: string
  configSha256: string
  manifest: unknown
  risk: Risk
  createdBy: string
  createdAt: string
}

/** A change waiting for (or past) approval. */
export interface Change {
  id: string
  function: string
  version: string
  action: 'canary' | 'promote'
  /** The deploy target the change is for (`local`: the embedded host's routing). */
  target: string
  canaryWeight: number | null
  risk: Risk
  author: string
  required: number
  status: 'pending' | 'approved' | 'applied' | 'rejected'
  approvers: string[]
}

/**
 * The version id: function, 12 hex of the bundle digest, 8 of the resolved config digest.
 * @param fn the function
 * @param bundleSha256 the bundle's sha256
 * @param configSha256 the resolved config's sha256
 */
export function versionId(fn: string, bundleSha256: string, configSha256: string): string {
  return `${fn}@${bundleSha256.slice(0, 12)}-${configSha256.slice(0, 8)}`
}

/**
 * The control plane's state in the SQL store (migration 005): immutable versions, routing (stable, canary with a
 * weight, previous stable for rollback, pins), changes and approvals by risk class. Every state change is an
 * audit entry.
 * @param db the store
 */
export function controlPlane(db: Db) {
  const audit = auditLog(db)

  const changeOf = (id: string): Promise<Change> => readChange(db, id)

  const core = {
    /** Records a version (idempotent: the same id is the same content). */
    async recordVersion(v: Omit<VersionRecord, 'id' | 'createdAt'>): Promise<VersionRecord> {
      const id = versionId(v.function, v.bundleSha256, v.configSha256)
      const inserted = await db.query(
        'INSERT INTO sovra_versions (id, function, bundle_sha256, config_sha256, manifest, risk, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING RETURNING id',
        [id, v.function, v.bundleSha256, v.configSha256, JSON.stringify(v.manifest), v.risk, v.createdBy],
      )
      if (inserted.rows.length > 0)
        await audit.append({
          actor: v.createdBy,
          action: 'version.create',
          subject: v.function,
          after: id,
          details: { bundle_sha256: v.bundleSha256, config_sha256: v.configSha256 },
        })
      return { ...v, id, createdAt: new Date().toISOString() }
    },

    /** A recorded version by id, or undefined. */
    async version(
      id: string,
    ): Promise<Pick<VersionRecord, 'id' | 'function' | 'bundleSha256' | 'configSha256'> | undefined> {
      const r = (
        await db.query<{ function: string; bundle_sha256: string; config_sha256: string }>(
          'SELECT function, bundle_sha256, config_sha256 FROM sovra_versions WHERE id = $1',
          [id],
        )
      ).rows[0]
      return r === undefined
        ? undefined
        : { id, function: r.function, bundleSha256: r.bundle_sha256, configSha256: r.config_sha256 }
    },

    /** The routing state of a function, or undefined before its first deploy. */
    async routing(fn: string): Promise<(RoutingState & { previous: string | undefined }) | undefined> {
      const r = (
        await db.query<{ stable: string; canary: string | null; canary_weight: number; previous: string | null }>(
          'SELECT stable, canary, canary_weight, previous FROM sovra_routes WHERE function = $1',
          [fn],
        )
      ).rows[0]
      if (r === undefined) return undefined
      const pins = (
        await db.query<{ attribute: string; value: string; version: string }>(
          'SELECT attribute, value, version FROM sovra_pins WHERE function = $1 ORDER BY attribute, value',
          [fn],
        )
      ).rows
      return {
        stable: r.stable,
        canary: r.canary === null ? undefined : { version: r.canary, weight: r.canary_weight },
        pins,
        previous: r.previous ?? undefined,
      }
    },

    /**
     * Asks for a version to become the canary (with a weight) or stable. Applied at once when its risk class needs no
     * approval (and for a function's first version); otherwise pending until enough distinct approvers agree.
     */
    async requestChange(c: {
      function: string
      version: string
      action: 'canary' | 'promote'
      /** The deploy target (default `local`). */
      target?: string
      weight?: number
      risk: Risk
      author: string
    }): Promise<Change> {
      if (
        c.action === 'canary' &&
        (c.weight === undefined || !Number.isInteger(c.weight) || c.weight < 0 || c.weight > 100)
      ) {
        throw new SovraError(
          'ERR_USAGE',
          `canary weight: expected a whole number 0-100, received ${JSON.stringify(c.weight)}`,
        )
      }
      const id = `chg-${randomUUID().slice(0, 8)}`
      const required = REQUIRED_APPROVALS[c.risk]
      const route = await this.routing(c.function)
      const first = route === undefined
      const now = required === 0
      await db.tx(async (tx) => {
        await tx.query(
          'INSERT INTO sovra_changes (id, function, version, action, target, canary_weight, risk, author, required, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
          [
            id,
            c.function,
            c.version,
            c.action,
            c.target ?? LOCAL_TARGET,
            c.weight ?? null,
            c.risk,
            c.author,
            required,
            now ? 'applied' : 'pending',
          ],
        )
        if (now)
          await applyChange(tx, {
            function: c.function,
            version: c.version,
            action: c.action,
            target: c.target ?? LOCAL_TARGET,
            canary_weight: c.weight ?? null,
          })
      })
      await audit.append({
        actor: c.author,
        action: now ? (first ? 'deploy' : c.action) : 'change.request',
        subject: c.function,
        ...(beforeOf(route, c.action) === undefined ? {} : { before: beforeOf(route, c.action) }),
        after: c.version,
        details: { change: id, risk: c.risk, required, ...(c.weight === undefined ? {} : { weight: c.weight }) },
      })
      return changeOf(id)
    },

    /**
     * The newest change asking for this version on a target, if any (to see whether a cluster deploy was approved).
     * @param version the version id
     * @param target the deploy target
     */
    async changeFor(version: string, target: string): Promise<Change | undefined> {
      const id = (
        await db.query<{ id: string }>(
          'SELECT id FROM sovra_changes WHERE version = $1 AND target = $2 ORDER BY created_at DESC LIMIT 1',
          [version, target],
        )
      ).rows[0]?.id
      return id === undefined ? undefined : changeOf(id)
    },

    /** Changes still waiting for approvals. */
    async pending(fn?: string): Promise<Change[]> {
      const ids = (
        await db.query<{ id: string }>(
          "SELECT id FROM sovra_changes WHERE status = 'pending' AND ($1::text IS NULL OR function = $1) ORDER BY created_at",
          [fn ?? null],
        )
      ).rows
      return Promise.all(ids.map((r) => changeOf(r.id)))
    },

    /** Promotes the canary to stable (it needs the same approvals as its risk class). */
    async promote(
      fn: string,
      author: string,
      risk: Risk,
      evalRun?: { required: boolean; runId?: string | undefined },
    ): Promise<Change> {
      const r = await this.routing(fn)
      if (r?.canary === undefined)
        throw new SovraError('ERR_USAGE', `function ${JSON.stringify(fn)} has no canary to promote`)
      // The eval capability records passing runs; until then the id is recorded with the promotion for the auditor.
      if (evalRun?.required === true && (evalRun.runId === undefined || evalRun.runId === '')) {
        throw new SovraError(
          'ERR_APPROVAL',
          `function ${JSON.stringify(fn)} requires a passing eval run to promote (rollout.require_eval): pass --eval-run <run id>`,
        )
      }
      const change = await this.requestChange({
        function: fn,
        version: r.canary.version,
        action: 'promote',
        risk,
        author,
      })
      if (evalRun?.runId !== undefined)
        await audit.append({
          actor: author,
          action: 'eval.attach',
          subject: change.id,
          after: r.canary.version,
          details: { eval_run: evalRun.runId },
        })
      return change
    },

    /** Rolls back at once (a routing change only): drops the canary, or returns stable to the previous version. */
    async rollback(fn: string, actor: string, reason: string): Promise<{ from: string; to: string }> {
      const r = await this.routing(fn)
      if (r === undefined)
        throw new SovraError('ERR_NOT_FOUND', `function ${JSON.stringify(fn)} has no deployed version`)
      let result: { from: string; to: string }
      if (r.canary !== undefined) {
        await db.query(
          'UPDATE sovra_routes SET canary = NULL, canary_weight = 0, updated_at = now() WHERE function = $1',
          [fn],
        )
        result = { from: r.canary.version, to: r.stable }
      } else if (r.previous !== undefined) {
        await db.query(
          'UPDATE sovra_routes SET stable = previous, previous = NULL, updated_at = now() WHERE function = $1',
          [fn],
        )
        result = { from: r.stable, to: r.previous }
      } else {
        throw new SovraError(
          'ERR_USAGE',
          `function ${JSON.stringify(fn)} has no canary and no previous stable version to roll back to`,
        )
      }
      await audit.append({ actor, action: 'rollback', subject: fn, before: result.from, after: result.to, reason })
      return result
    },

    /** Pins callers with `attribute = value` to a version. */
    async pin(fn: string, attribute: string, value: string, version: string, actor: string): Promise<void> {
      const exists =
        (await db.query('SELECT 1 FROM sovra_versions WHERE id = $1 AND function = $2', [version, fn])).rows.length > 0
      if (!exists)
        throw new SovraError('ERR_NOT_FOUND', `no version ${JSON.stringify(version)} of function ${JSON.stringify(fn)}`)
      await db.query(
        'INSERT INTO sovra_pins (function, attribute, value, version) VALUES ($1, $2, $3, $4) ON CONFLICT (function, attribute, value) DO UPDATE SET version = EXCLUDED.version',
        [fn, attribute, value, version],
      )
      await audit.append({ actor, action: 'pin', subject: fn, after: version, details: { attribute, value } })
    },

    /** Removes a pin. */
    async unpin(fn: string, attribute: string, value: string, actor: string): Promise<void> {
      await db.query('DELETE FROM sovra_pins WHERE function = $1 AND attribute = $2 AND value = $3', [
        fn,
        attribute,
        value,
      ])
      await audit.append({ actor, action: 'unpin', subject: fn, details: { attribute, value } })
    },
  }
  return { ...core, ...changeApprovals(db, core) }
}

/** The control plane's operations. */
export type ControlPlane = ReturnType<typeof controlPlane>
