import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'

import { SovraError } from '../../../runtime/core/errors.ts'
import type { Project } from '../../../runtime/config/resolve.ts'
import { BRIDGE_ACTION, type ActionArtifact } from './build.ts'
import { bindingKind } from '../../../runtime/bindings/registry.ts'
import type { FunctionConfig } from '../../../runtime/config/schema.ts'

/** OpenWhisk's accepted ranges (docs/platform-notes.md), checked before any call. */
export const OW_LIMITS = { timeout_ms: [100, 300_000], memory_mb: [128, 512] } as const

/** One entity sovra manages on a cluster, as it should be. */
export interface DesiredEntity {
  kind: 'package' | 'action' | 'trigger' | 'rule'
  /** `pkg/action` for actions, plain names otherwise. */
  name: string
  /** The request body (actions, packages, triggers) or `{trigger, action}` (rules). */
  body: Record<string, unknown>
  /** sha256 of what defines it, stored in the `sovra-digest` annotation; equal digests mean no change. */
  digest: string
  /** Alarm feed parameters, for cron triggers. */
  feed?: Record<string, unknown>
  /** The function it belongs to (for `deploy <fn>`). */
  function?: string
}

/** What the deploy binds besides the config: cluster-side settings for bindings. */
export interface DeployInputs {
  /** S3 settings of the cluster's MinIO, for functions with buckets. */
  s3?: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string }
  /** Secret values by name (from .dev.vars / SOVRA_SECRET_*). */
  secrets: Record<string, string>
  /** The built events bridge, when any function has object triggers. */
  bridge?: { path: string; sha256: string }
  /** The bearer token MinIO's webhook sends to the bridge (secret MINIO_WEBHOOK_TOKEN). */
  webhookToken?: string
  /** Functions whose object triggers the bridge serves (default: the deployed ones). */
  bridgeFunctions?: Project['functions']
  /** The AI router the actions' `env.AI` calls (the gateway) and its bearer token (secret AI_ROUTER_TOKEN). */
  ai?: { url: string; token: string }
  /** Current versions of functions not in this deploy (a single-function deploy keeps the others'). */
  currentBase?: Record<string, string>
  /** Routing already on the cluster (the package's `sovra-routing`), kept for functions not deployed now. */
  routingBase?: Record<string, OwRouting>
  /** Deploy the new versions as canaries at this weight (0-100) instead of making them stable. */
  canaryWeight?: number | undefined
}

/** One function's routing on the cluster: the stable action, and optionally a canary action with a weight. */
export interface OwRouting {
  stable: string
  canary?: { version: string; weight: number } | undefined
  /** Callers whose attribute (`tenant`, `header:<name>`, `claim:<name>`) equals `value` get `version`. */
  pins?: Array<{ attribute: string; value: string; version: string }> | undefined
}

const digestOf = (v: unknown): string => createHash('sha256').update(JSON.stringify(v)).digest('hex')
const ann = (o: Record<string, unknown>): Array<{ key: string; value: unknown }> =>
  Object.entries(o).map(([key, value]) => ({ key, value }))

/**
 * The action name of a function version: the function and the first 8 hex digits of its action's sha256.
 * @param fn the function name
 * @param sha256 the built action's digest
 */
export function actionName(fn: string, sha256: string): string {
  return `${fn}-${sha256.slice(0, 8)}`
}

/**
 * Checks each function's limits against OpenWhisk's ranges, collecting every problem into one ERR_CONFIG.
 * @param project the resolved project
 */
export function checkLimits(project: Project): void {
  const problems: string[] = []
  for (const fn of project.functions) {
    const [tMin, tMax] = OW_LIMITS.timeout_ms
    const [mMin, mMax] = OW_LIMITS.memory_mb
    if (fn.limits.timeout_ms < tMin || fn.limits.timeout_ms > tMax)
      problems.push(
        `function "${fn.name}": limits.timeout_ms ${fn.limits.timeout_ms} is outside OpenWhisk's range ${tMin}-${tMax} ms`,
      )
    if (fn.limits.memory_mb < mMin || fn.limits.memory_mb > mMax)
      problems.push(
        `function "${fn.name}": limits.memory_mb ${fn.limits.memory_mb} is outside OpenWhisk's range ${mMin}-${mMax} MB`,
      )
  }
  if (problems.length > 0) throw new SovraError('ERR_CONFIG', `cannot deploy to OpenWhisk:\n  ${problems.join('\n  ')}`)
}

/**
 * Everything the project should be on the cluster: a package named after the project; per function an action
 * `<pkg>/<fn>-<sha8>` (web-export + raw-http + final for HTTP functions, limits from config, the `__sovra` parameter
 * with vars, secrets, bucket bindings and S3 settings); per cron a trigger on the alarms feed and a rule; per function
 * with object triggers a trigger and a rule (fired by the events bridge).
 * @param project the resolved project
 * @param artifacts the built actions by function name
 * @param inputs secrets and cluster settings
 */
export function desiredState(
  project: Project,
  artifacts: ReadonlyMap<string, ActionArtifact>,
  inputs: DeployInputs,
): DesiredEntity[] {
  checkLimits(project)
  const pkg = project.name
  const out: DesiredEntity[] = []
  // The package records each function's current action: what the gateway invokes.
  // The package records each function's routing (what the gateway invokes): stable, or stable plus a canary.
  const routing: Record<string, OwRouting> = { ...inputs.routingBase }
  for (const [fn, stable] of Object.entries(inputs.currentBase ?? {})) routing[fn] ??= { stable }
  for (const fn of project.functions) {
    const a = artifacts.get(fn.name)
    if (a === undefined) continue
    const name = actionName(fn.name, a.sha256)
    const before = routing[fn.name]
    const pins = before?.pins === undefined || before.pins.length === 0 ? {} : { pins: before.pins }
    routing[fn.name] =
      inputs.canaryWeight !== undefined && before !== undefined && before.stable !== name
        ? { stable: before.stable, canary: { version: name, weight: inputs.canaryWeight }, ...pins }
        : { stable: name, ...pins }
  }
  const current = Object.fromEntries(Object.entries(routing).map(([fn, r]) => [fn, r.stable]))
  const pkgDigest = digestOf({ package: pkg, routing })
  out.push({
    kind: 'package',
    name: pkg,
    body: {
      parameters: [],
      annotations: ann({
        'sovra-project': pkg,
        'sovra-current': current,
        'sovra-routing': routing,
        'sovra-digest': pkgDigest,
      }),
    },
    digest: pkgDigest,
  })
  for (const fn of project.functions) {
    const a = artifacts.get(fn.name)
    if (a === undefined) throw new SovraError('ERR_BUILD', `no built action for function "${fn.name}"`)
    const action = `${pkg}/${actionName(fn.name, a.sha256)}`
    // Triggers (crons, object events) always run stable: during a canary their rules keep the stable action.
    const stableAction = `${pkg}/${routing[fn.name]?.stable ?? actionName(fn.name, a.sha256)}`
    const missing = fn.secrets.filter((s) => inputs.secrets[s] === undefined)
    if (missing.length > 0)
      throw new SovraError('ERR_CONFIG', `function "${fn.name}" needs secrets ${missing.join(', ')}, which are not set`)
    const sovra = {
      vars: fn.vars,
      secrets: Object.fromEntries(fn.secrets.map((s) => [s, inputs.secrets[s] as string])),
      ...bindingParams(fn, inputs),
    }
    const web = fn.routes.length > 0
    const annotations = {
      'sovra-project': pkg,
      'sovra-function': fn.name,
      'sovra-sha256': a.sha256,
      ...(web ? { 'web-export': true, 'raw-http': true, final: true } : {}),
    }
    const code = readFileSync(a.path)
    // What is sent is what was signed and verified: the file must still hash to the built digest.
    if (createHash('sha256').update(code).digest('hex') !== a.sha256)
      throw new SovraError(
        'ERR_SIGNATURE',
        `the action of "${fn.name}" changed on disk after it was built and signed (${a.path}); build and deploy again`,
      )
    const definition = {
      exec: { kind: a.kind, main: a.main, code: code.toString('utf8') },
      parameters: [{ key: '__sovra', value: sovra }],
      limits: {
        timeout: fn.limits.timeout_ms,
        memory: Math.max(OW_LIMITS.memory_mb[0], fn.limits.memory_mb),
        concurrency: 1,
      },
    }
    // The digest covers the code (by sha256), parameters, limits and annotations, not the code text itself.
    const digest = digestOf({
      sha256: a.sha256,
      parameters: definition.parameters,
      limits: definition.limits,
      annotations,
    })
    out.push({
      kind: 'action',
      name: action,
      body: { ...definition, annotations: ann({ ...annotations, 'sovra-digest': digest }) },
      digest,
      function: fn.name,
    })
    fn.crons.forEach((cron, i) => {
      const trigger = `${pkg}-${fn.name}-cron-${i}`
      const feed = {
        cron,
        ...(fn.timezone === undefined ? {} : { timezone: fn.timezone }),
        ...(fn.startDate === undefined ? {} : { startDate: fn.startDate }),
        ...(fn.stopDate === undefined ? {} : { stopDate: fn.stopDate }),
        trigger_payload: { __sovra_trigger: 'cron', cron },
      }
      const tDigest = digestOf(feed)
      out.push({
        kind: 'trigger',
        name: trigger,
        body: {
          annotations: ann({
            'sovra-project': pkg,
            'sovra-function': fn.name,
            feed: '/whisk.system/alarms/alarm',
            'sovra-digest': tDigest,
          }),
        },
        digest: tDigest,
        feed,
        function: fn.name,
      })
      const rule = { trigger, action: stableAction }
      out.push({ kind: 'rule', name: `${trigger}-rule`, body: rule, digest: digestOf(rule), function: fn.name })
    })
    if (fn.objectTriggers.length > 0) {
      const trigger = `${pkg}-${fn.name}-object`
      const filters = fn.objectTriggers
      const tDigest = digestOf(filters)
      out.push({
        kind: 'trigger',
        name: trigger,
        body: {
          annotations: ann({
            'sovra-project': pkg,
            'sovra-function': fn.name,
            'sovra-object-triggers': filters,
            'sovra-digest': tDigest,
          }),
        },
        digest: tDigest,
        function: fn.name,
      })
      const rule = { trigger, action: stableAction }
      out.push({ kind: 'rule', name: `${trigger}-rule`, body: rule, digest: digestOf(rule), function: fn.name })
    }
  }
  const routed = (inputs.bridgeFunctions ?? project.functions).filter((f) => f.objectTriggers.length > 0)
  if (routed.length > 0) {
    if (inputs.bridge === undefined)
      throw new SovraError('ERR_BUILD', 'functions have object triggers but the events bridge was not built')
    if (inputs.webhookToken === undefined)
      throw new SovraError(
        'ERR_CONFIG',
        `functions ${routed.map((f) => f.name).join(', ')} have object triggers: the events bridge needs the secret MINIO_WEBHOOK_TOKEN (the auth_token MinIO's webhook sends)`,
      )
    const sovra = {
      routes: routed.map((f) => ({ function: f.name, trigger: `${pkg}-${f.name}-object`, filters: f.objectTriggers })),
      webhook_token: inputs.webhookToken,
    }
    const annotations = {
      'sovra-project': pkg,
      'web-export': true,
      'raw-http': true,
      final: true,
      'provide-api-key': true,
    }
    const definition = {
      exec: { kind: 'nodejs:20', main: 'main', code: readFileSync(inputs.bridge.path, 'utf8') },
      parameters: [{ key: '__sovra', value: sovra }],
      limits: { timeout: 60_000, memory: 128, concurrency: 1 },
    }
    const digest = digestOf({
      sha256: inputs.bridge.sha256,
      parameters: definition.parameters,
      limits: definition.limits,
      annotations,
    })
    out.push({
      kind: 'action',
      name: `${pkg}/${BRIDGE_ACTION}`,
      body: { ...definition, annotations: ann({ ...annotations, 'sovra-digest': digest }) },
      digest,
    })
  }
  return out
}

/**
 * The `mc` commands that point MinIO's bucket notifications at the events bridge: a webhook target with the
 * bridge's URL and the bearer token (as a variable, never the value), a queue folder so failed deliveries are
 * retried, and one `mc event add` per object trigger with its prefix, suffix and event types.
 * @param project the resolved project
 * @param bridgeUrl the bridge's web action URL
 * @param alias the `mc` alias of the MinIO deployment
 */
export function minioCommands(project: Project, bridgeUrl: string, alias = 'minio'): string[] {
  const lines = [
    `mc admin config set ${alias} notify_webhook:sovra endpoint="${bridgeUrl}" auth_token="$MINIO_WEBHOOK_TOKEN" queue_dir="/data/.minio-events" queue_limit="100000"`,
    `mc admin service restart ${alias}`,
  ]
  for (const f of project.functions) {
    for (const t of f.objectTriggers) {
      const events = (t.events ?? ['created', 'removed']).map((e) => (e === 'created' ? 'put' : 'delete')).join(',')
      lines.push(
        `mc event add ${alias}/${t.bucket} arn:minio:sqs::sovra:webhook --event ${events}${t.prefix ? ` --prefix "${t.prefix}"` : ''}${t.suffix ? ` --suffix "${t.suffix}"` : ''}   # ${f.name}`,
      )
    }
  }
  return lines
}

/**
 * What each binding kind of a function binds into its action's `__sovra` parameter (S3 settings, the AI router).
 * @param fn the function
 * @param inputs the cluster-side settings
 */
function bindingParams(fn: FunctionConfig, inputs: DeployInputs): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const type of new Set(fn.bindings.map((b) => b.type))) {
    const kind = bindingKind(type)
    Object.assign(
      out,
      kind.actionParams?.(
        fn.bindings.filter((b) => b.type === type),
        inputs,
        fn.name,
      ),
    )
  }
  return out
}
