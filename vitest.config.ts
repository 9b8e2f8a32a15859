import { defineConfig } from 'vitest/config';

// The OCI conformance port runs once more per authentication mode (test/conformance/setup.ts).
// `include` is set per project: with `extends: true` a project's list adds to the root's.
const conformanceWithAuth = (mode: 'basic' | 'token') => ({
  extends: true as const,
  test: { name: `conformance-${mode}`, include: ['test/conformance/**/*.test.ts'], env: { TEST_CONFORMANCE_AUTH: mode } },
});

export default defineConfig({
  test: {
    // Only a guard against a test that hangs: on two shared cores under load, tests that
    // start processes and real clients take several times longer than on a quiet machine.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      { extends: true, test: { name: 'berth', include: ['test/**/*.test.ts'] } },
      conformanceWithAuth('basic'),
      conformanceWithAuth('token'),
    ],
  },
});
