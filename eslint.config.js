// ESLint flat config. Layering (DESIGN.md §1 "What may import what") is enforced twice: by one
// tsconfig per runtime, and here by import restrictions per folder. Cycles: tests/tools/check-cycles.ts.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const runtimePackages = ['ws', 'idb', 'preact', 'preact/*', 'better-sqlite3', 'ioredis', 'workbox-window', 'node:*'];
const layer = (group, message) => ({ group, message });

const relayImports = (clientStore) => ['error', { patterns: [
  layer(['**/protocol/**', '**/worker/**', '**/ui/**', '**/sw/**', ...clientStore], 'The relay sees only shared wire types; it can read nothing it stores.'),
  layer(['@noble/ciphers', '@noble/ciphers/*', 'idb', 'preact', 'preact/*'], 'The relay decrypts nothing and renders nothing.'),
] }];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tsbuild/**', 'data/**', 'coverage/**', 'dev-dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Node scripts (scripts/*.mjs, configs): TypeScript files get undefined-name checks from tsc.
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly', URL: 'readonly' } },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    files: ['src/protocol/**/*.ts'],
    ignores: ['src/protocol/crypto/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        layer(['@noble/*'], 'Only src/protocol/crypto imports @noble (STYLE.md §5).'),
        layer(runtimePackages, 'src/protocol is pure and sans-IO.'),
        layer(['**/worker/**', '**/ui/**', '**/relay/**', '**/store/**', '**/sw/**'], 'protocol imports nothing above it.'),
      ] }],
    },
  },
  {
    files: ['src/protocol/crypto/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        layer(runtimePackages, 'src/protocol is pure and sans-IO.'),
        layer(['**/worker/**', '**/ui/**', '**/relay/**', '**/store/**', '**/sw/**'], 'protocol imports nothing above it.'),
      ] }],
    },
  },
  // The client store is src/store; src/relay/store is the relay's own. Which one `../store/` names
  // depends on the importing file's depth, so the client store's spelling is listed per depth.
  { files: ['src/relay/**/*.ts'], rules: { 'no-restricted-imports': relayImports(['../../store/**', '../../../store/**']) } },
  { files: ['src/relay/*.ts'], rules: { 'no-restricted-imports': relayImports(['../store/**']) } },
  {
    files: ['src/ui/**/*.ts', 'src/ui/**/*.tsx'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        layer(['**/protocol/**', '@noble/*', '**/store/**', '**/relay/**', '**/sw/**'], 'The UI never sees keys or crypto (DESIGN.md §1).'),
      ] }],
    },
  },
  {
    files: ['sw/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        layer(['**/protocol/**', '@noble/*', '**/worker/**', '**/ui/**', '**/relay/**'], 'The service worker moves ciphertext only.'),
      ] }],
    },
  },
  {
    files: ['src/worker/**/*.ts', 'src/store/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        layer(['**/ui/**', '**/relay/**', '**/sw/**'], 'The worker talks to the relay over the network, not by import.'),
      ] }],
    },
  },
);
