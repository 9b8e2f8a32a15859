import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tryRun } from '../helpers/exec.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('dependencies', () => {
  it('every package in the lockfile supports the Node.js running the tests (npm checks their engines)', async () => {
    // A dry run installs nothing; --engine-strict turns npm's EBADENGINE warning into a failure.
    const result = await tryRun('npm', ['ci', '--dry-run', '--engine-strict', '--ignore-scripts', '--offline', '--no-audit', '--no-fund'], {
      cwd: ROOT,
      timeoutMs: 120_000,
    });
    expect(result.stderr).not.toMatch(/EBADENGINE|notsup/);
    expect(result.code, result.stderr).toBe(0);
  });
});
