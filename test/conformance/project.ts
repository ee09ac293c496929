import { join } from 'node:path'
import type { Principal } from '../../runtime/core/context.ts'
import { ROOT, tempProject, withFixtures } from '../helpers.ts'

/** The package name on OpenWhisk. */
export const PROJECT_NAME = 'conformance'

/** The caller every host's principal case expects to see, however the host establishes it. */
export const ALICE: Principal = {
  subject: 'alice',
  groups: ['legal', 'audit'],
  clearance: 'confidential',
  tenant: 'bank-a',
}

/** `[auth]` for the embedded host: no jwks, {@link ALICE} as a dev principal (`x-sovra-dev-principal: alice`). */
export const DEV_AUTH = `
[[auth.dev_principals]]
name = "alice"
groups = ["legal", "audit"]
clearance = "confidential"
tenant = "bank-a"
`

/** `[auth]` for the gateway: tokens verified against `jwks.json` in the project folder (written by the test). */
export const JWT_AUTH = `
[auth]
jwks = "jwks.json"
issuer = "https://idp.bank.example"
audience = "sovra"
`

// One function per behaviour; routes are the same on every host (the action-proxy host routes with them too).
const FUNCTIONS = `
name = "${PROJECT_NAME}"

[[functions]]
name = "echo"
main = "${join(ROOT, 'functions/echo/index.ts')}"
routes = ["/echo", "/echo/*"]

[[functions]]
name = "throws"
main = "fixtures/throws.ts"
routes = ["/throws"]

[[functions]]
name = "binary"
main = "fixtures/binary.ts"
routes = ["/binary"]

[[functions]]
name = "plain"
main = "fixtures/plain.js"
routes = ["/plain"]
vars = { GREETING = "conformance" }

[[functions]]
name = "sse"
main = "fixtures/sse.ts"
routes = ["/sse"]

[[functions]]
name = "slow"
main = "fixtures/slow.ts"
routes = ["/slow"]
limits = { timeout_ms = 500 }

[[functions]]
name = "big"
main = "fixtures/big.ts"
routes = ["/big"]

[[functions]]
name = "size"
main = "fixtures/size.ts"
routes = ["/size"]
limits = { max_body_bytes = 1024 }

[[functions]]
name = "whoami"
main = "fixtures/whoami.ts"
routes = ["/whoami"]

[[functions]]
name = "background"
main = "${join(ROOT, 'test/conformance/fixtures/background.ts')}"
routes = ["/background", "/background/*"]
`

/**
 * Creates the conformance project in a temp folder (removed after the file): the fixture functions, the config
 * `wrangler-compat.toml` with the host's `[auth]` table appended.
 * @param auth the `[auth]` TOML for this host ({@link DEV_AUTH}, {@link JWT_AUTH}, or none)
 * @param files more files for the project folder (e.g. `jwks.json`)
 */
export function conformanceProject(auth = '', files: Record<string, string> = {}): { dir: string; config: string } {
  const dir = withFixtures(tempProject({ 'wrangler-compat.toml': `${FUNCTIONS}\n${auth}`, ...files }))
  return { dir, config: join(dir, 'wrangler-compat.toml') }
}
