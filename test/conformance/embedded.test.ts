import { startTestHost } from '../../runtime/testing/index.ts'
import { ALICE, conformanceProject, DEV_AUTH } from './project.ts'
import { testHost, type Call } from './suite.ts'

// The embedded host (runtime/testing startTestHost: bundles, isolates, HTTP on 127.0.0.1). Callers are established
// without a JWKS: a loopback dev principal by header, else anonymous.
testHost('conformance: embedded host', { streams: true, waitUntil: 'after-response', routes: true }, async () => {
  const { config } = conformanceProject(DEV_AUTH)
  const host = await startTestHost({ config })
  const call: Call = (path, init) => host.fetch(path, init)
  return {
    call,
    principals: [
      {
        who: 'dev principal alice (x-sovra-dev-principal from loopback)',
        call: (path) => host.fetch(path, { headers: { 'x-sovra-dev-principal': 'alice' } }),
        expect: { status: 200, principal: ALICE },
      },
      {
        who: 'no credentials',
        call,
        expect: { status: 200, principal: { subject: 'anonymous', groups: [], clearance: 'public', anonymous: true } },
      },
      {
        who: 'an unknown dev principal',
        call: (path) => host.fetch(path, { headers: { 'x-sovra-dev-principal': 'eve' } }),
        expect: { status: 401, code: 'ERR_UNAUTHENTICATED' },
      },
    ],
    close: () => host.close(),
  }
})
