// A vitest reporter for CI (.ci/run): writes the errors that belong to no test, which vitest's JSON report leaves
// out (a failed beforeAll/afterAll inside a describe is recorded on the describe, and the JSON report keeps only the
// file's first error), to the file named by SOVRA_SUITE_ERRORS, as { "<test file>": ["message", ...] } plus
// "unhandled": [...]. .ci/test-summary.mjs reads it next to the JSON report.
import { writeFileSync } from 'node:fs'

/** Records every failed suite's errors (file or describe: a hook that failed or timed out, a file that failed to load). */
export default class SuiteErrorsReporter {
  onTestRunEnd(testModules, unhandledErrors) {
    const out = { files: {}, unhandled: unhandledErrors.map((e) => e.message ?? String(e)) }
    for (const m of testModules) {
      const errors = [...m.errors(), ...[...m.children.allSuites()].flatMap((s) => s.errors())].map(
        (e) => e.message ?? String(e),
      )
      if (errors.length > 0) out.files[m.moduleId] = errors
    }
    const path = process.env.SOVRA_SUITE_ERRORS
    if (path) writeFileSync(path, JSON.stringify(out))
  }
}
