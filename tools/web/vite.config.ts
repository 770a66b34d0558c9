import { defineConfig, defaultClientConditions } from 'vite';
import { fileURLToPath } from 'node:url';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Workspace packages are bundled from their TypeScript sources (`@dfd/source` condition), so the
// app never depends on a stale dist/. `base: './'` makes the build relocatable: `dfd export --app`
// copies it anywhere and it still finds its assets and the model beside it.
export default defineConfig({
  root: here('.'),
  base: './',
  resolve: { conditions: ['@dfd/source', ...defaultClientConditions] },
  build: {
    outDir: here('./dist'),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 4096,
    rolldownOptions: { input: { main: here('./index.html'), train: here('./train.html') } },
  },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
