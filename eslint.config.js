import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'web/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // The server, the auth methods, the engines, the operator and the API client never import the CLI (issue 17): the
  // CLI is one user of src/client, and nothing but the CLI depends on it.
  {
    files: ['src/kube/**/*.ts', 'src/core/**/*.ts', 'src/auth/**/*.ts', 'src/engines/**/*.ts', 'src/client/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '(^|/)cli/',
              message:
                'src/cli is the command line; use the API client (src/client) or move what you need out of cli/.',
            },
          ],
        },
      ],
    },
  },
  // The API client holds no server: outside its tests it imports only itself (and the core's duration parser, which
  // imports nothing), so the operator and agents can use it without taking in the server.
  {
    files: ['src/client/**/*.ts'],
    ignores: ['src/client/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./(?!core/duration\\.js$)',
              message: 'src/client imports nothing of the server or the CLI (src/core/duration.ts excepted).',
            },
          ],
        },
      ],
    },
  },
  // The one duration parser is shared by the server, the CLI, the client and the operator: it imports nothing.
  {
    files: ['src/core/duration.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [{ regex: '.', message: 'src/core/duration.ts imports nothing (the CLI and the client use it).' }],
        },
      ],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: globals.node },
  },
);
