// Prints CI's closing line from vitest's JSON report (and, when given, the suite errors .ci/suite-errors-reporter.mjs
// wrote): "tests: N passed, N failed, N skipped", then "; suites: N failed (file: message, ...)" when a file failed
// on its own account (a hook failed or timed out, it failed to load), and "; unhandled errors: N (...)". A failed
// hook leaves its tests "skipped" in the report, so without the suite part the line would read as a clean run.
// Usage: node .ci/test-summary.mjs REPORT.json [SUITE-ERRORS.json]
import { existsSync, readFileSync } from 'node:fs'
import { relative } from 'node:path'

const [reportPath, errorsPath] = process.argv.slice(2)
const report = JSON.parse(readFileSync(reportPath, 'utf8'))
const extra =
  errorsPath !== undefined && existsSync(errorsPath)
    ? JSON.parse(readFileSync(errorsPath, 'utf8'))
    : { files: {}, unhandled: [] }
const oneLine = (s) => s.split('\n')[0].trim()

const suites = []
for (const file of report.testResults) {
  const errors = extra.files[file.name] ?? (file.message ? [file.message] : [])
  const testFailed = file.assertionResults.some((a) => a.status === 'failed')
  // Failed with no failed test: the file itself failed. Failed tests plus a suite error (an afterAll): both count.
  if (file.status !== 'failed' || (testFailed && errors.length === 0)) continue
  const notRun = file.assertionResults.filter((a) => a.status !== 'passed' && a.status !== 'failed').length
  const why = errors.length > 0 ? oneLine(errors[0]) : 'a hook or describe block failed'
  suites.push(`${relative(process.cwd(), file.name)}: ${why}${notRun > 0 ? `, ${notRun} tests not run` : ''}`)
}

let line =
  `tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed` +
  (report.numPendingTests ? `, ${report.numPendingTests} skipped` : '')
if (suites.length > 0) line += `; suites: ${suites.length} failed (${suites.join('; ')})`
if (extra.unhandled.length > 0) line += `; unhandled errors: ${extra.unhandled.length} (${oneLine(extra.unhandled[0])})`
console.log(line)
