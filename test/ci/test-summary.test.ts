import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { ROOT, tempProject } from '../helpers.ts'

// CI's closing line (.ci/test-summary.mjs), run as CI runs it, on reports shaped as vitest's JSON reporter writes them.
const summary = (report: unknown, errors?: unknown): string => {
  const dir = tempProject({})
  writeFileSync(join(dir, 'report.json'), JSON.stringify(report))
  const args = [join(ROOT, '.ci/test-summary.mjs'), join(dir, 'report.json')]
  if (errors !== undefined) {
    writeFileSync(join(dir, 'errors.json'), JSON.stringify(errors))
    args.push(join(dir, 'errors.json'))
  }
  return execFileSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' }).trim()
}
const file = (name: string, status: string, tests: string[], message = '') => ({
  name: join(ROOT, name),
  status,
  message,
  assertionResults: tests.map((s) => ({ status: s })),
})

describe('.ci/test-summary.mjs', () => {
  it('prints a clean run as passed and skipped counts only', () => {
    const report = {
      numPassedTests: 3,
      numFailedTests: 0,
      numPendingTests: 1,
      testResults: [file('test/a.test.ts', 'passed', ['passed', 'passed', 'passed', 'skipped'])],
    }
    expect(summary(report)).toBe('tests: 3 passed, 0 failed, 1 skipped')
  })

  it('counts a file whose hook failed as a failed suite, with the reason and the tests it did not run', () => {
    const report = {
      numPassedTests: 2,
      numFailedTests: 0,
      numPendingTests: 2,
      testResults: [
        file('test/a.test.ts', 'passed', ['passed', 'passed']),
        file('test/infra/deploy.test.ts', 'failed', ['skipped', 'skipped']),
      ],
    }
    const errors = {
      files: { [join(ROOT, 'test/infra/deploy.test.ts')]: ['Hook timed out in 30000ms.\n at ...'] },
      unhandled: [],
    }
    expect(summary(report, errors)).toBe(
      'tests: 2 passed, 0 failed, 2 skipped; suites: 1 failed (test/infra/deploy.test.ts: Hook timed out in 30000ms., 2 tests not run)',
    )
    expect(summary(report)).toMatch(
      /suites: 1 failed \(test\/infra\/deploy\.test\.ts: a hook or describe block failed, 2 tests not run\)$/,
    )
  })

  it('does not count a file twice when its own tests failed, and reports unhandled errors', () => {
    const report = {
      numPassedTests: 1,
      numFailedTests: 1,
      numPendingTests: 0,
      testResults: [file('test/b.test.ts', 'failed', ['passed', 'failed'])],
    }
    expect(summary(report, { files: {}, unhandled: ['late throw\nstack'] })).toBe(
      'tests: 1 passed, 1 failed; unhandled errors: 1 (late throw)',
    )
  })
})
