import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: {
    // Functions and tests import the package by name, as a project that depends on sovra does.
    alias: {
      'sovra/testing': fileURLToPath(new URL('./runtime/testing/index.ts', import.meta.url)),
      sovra: fileURLToPath(new URL('./runtime/core/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    // Hooks start hosts and servers (bundling, isolates); 30 s was not enough on a busy 2-core CI machine (issue 10).
    // Hooks that deploy or load models pass HEAVY_HOOK_MS (test/helpers.ts) themselves.
    hookTimeout: 60_000,
    // Each file starts real servers and isolates; two at a time suits a 2-core machine.
    maxWorkers: 2,
    pool: 'forks',
  },
})
