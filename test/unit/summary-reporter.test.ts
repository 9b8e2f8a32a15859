import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const FIXTURES = fileURLToPath(new URL('../fixtures/reporter/', import.meta.url));
const VITEST = fileURLToPath(new URL('../../node_modules/vitest/vitest.mjs', import.meta.url));

/** Runs vitest with the summary reporter on fixture files; returns its last line. */
function summaryOf(files: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VITEST, 'run', '--config', 'vitest.config.ts', ...files], {
      cwd: FIXTURES,
      // Not this run's VITEST_* variables: the child is a run of its own.
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('error', reject);
    child.once('exit', () => resolve(out.trim().split('\n').at(-1) ?? ''));
  });
}

describe('the summary line', () => {
  it('counts the tests a failing beforeAll kept from running as failed, not skipped', async () => {
    expect(await summaryOf(['before-all'])).toBe('1 passed, 2 failed');
    expect(await summaryOf(['file-level-hook'])).toBe('0 passed, 1 failed');
  });

  it('counts a failing afterAll and a file that does not load as failures, and only real skips as skipped', async () => {
    // mixed: 1 passed, 1 failed, 1 skipped; before-all: 1 passed, 2 failed; file-level-hook: 1
    // failed; after-all: 1 passed and the suite failed; load error: 1 failed.
    expect(await summaryOf([])).toBe('3 passed, 6 failed, 1 skipped');
  });
});
