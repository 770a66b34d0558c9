import { defineConfig } from 'vitest/config';

// Shared by every package: `vitest run --config ../../vitest.config.ts` from a package folder.
// The `@dfd/source` export condition points workspace packages at their TypeScript sources, so
// tests never depend on a stale dist/.
export default defineConfig({
  resolve: { conditions: ['@dfd/source'] },
  ssr: { resolve: { conditions: ['@dfd/source'], externalConditions: ['@dfd/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
