import { defineConfig } from 'vite';

// The server serves the build at /ui/ (src/http/ui.ts). esbuild compiles the JSX itself: no Babel plugin needed.
export default defineConfig({
  base: '/ui/',
  esbuild: { jsx: 'automatic' },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, target: 'es2022' },
  // `npm run dev -w web` serves the UI with hot reload and hands the API to a dev server on :8200.
  server: { proxy: { '/v1': 'http://127.0.0.1:8200' } },
});
