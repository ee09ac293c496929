// Lint: typescript-eslint's recommended rules, no warnings allowed (`--max-warnings 0`), plus the import rules of
// ../shared/ARCHITECTURE.md ("Import rules"), enforced here so a violation fails `npm test`.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const nodeBuiltins = {
  group: ['node:*'],
  message: 'runtime/core and functions use Web APIs only (ARCHITECTURE.md, import rules).',
}
// Composition roots: runtime/cli, runtime/testing, and each binding's action side (runtime/bindings/<kind>/action.ts,
// which wires an adapter into OpenWhisk actions).
const noInfra = {
  group: ['**/infra/*', '**/infra/**'],
  message: 'Only runtime/cli (the composition root) and tests wire infra/* (ARCHITECTURE.md).',
}

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.sovra/**', 'bench/peers/**', 'bench/results/**', 'schema/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        Response: 'readonly',
        Request: 'readonly',
        Headers: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        ReadableStream: 'readonly',
        AbortController: 'readonly',
        performance: 'readonly',
        fetch: 'readonly',
        crypto: 'readonly',
        DOMException: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/ban-ts-comment': [
        'error',
        { 'ts-ignore': true, 'ts-expect-error': 'allow-with-description' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['runtime/core/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            nodeBuiltins,
            noInfra,
            { group: ['../*', '!../core/*'], message: 'runtime/core imports nothing of ours.' },
          ],
        },
      ],
    },
  },
  {
    files: ['functions/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            nodeBuiltins,
            noInfra,
            { group: ['../*', '../../*'], message: 'functions import only sovra (runtime/core) and valibot.' },
          ],
        },
      ],
    },
  },
  {
    files: ['runtime/**', 'triggers/**'],
    ignores: ['runtime/core/**', 'runtime/cli/**', 'runtime/testing/**', 'runtime/bindings/*/action.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [noInfra] }] },
  },
  { files: ['test/**', 'bench/**'], rules: { '@typescript-eslint/no-non-null-assertion': 'off' } },
  // Heavy native packages load lazily, only inside infra/pools (ARCHITECTURE.md): elsewhere not even as a type.
  {
    files: ['**/*.ts'],
    ignores: ['infra/pools/**', 'test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: ['node-llama-cpp', 'onnxruntime-node'].map((name) => ({
            name,
            message: 'node-llama-cpp and onnxruntime-node load only inside infra/pools.',
          })),
        },
      ],
    },
  },
  {
    files: ['infra/pools/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: ['node-llama-cpp', 'onnxruntime-node'].map((name) => ({
            name,
            allowTypeImports: true,
            message:
              'Import the engine lazily (await import(...)); a static import loads the native library in every process.',
          })),
        },
      ],
    },
  },
)
