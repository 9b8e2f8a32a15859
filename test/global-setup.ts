import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

const PREFIX = 'berth-run-';

/**
 * Every temporary folder of a run lives in one folder of its own, removed at the end: a
 * test that fails before its cleanup leaves nothing behind either. Each test still removes
 * what it makes; this only catches what a failure skipped. The test workers and the
 * processes they start find it through TMPDIR, which Node's tmpdir() reads.
 */
export default async function setup(): Promise<() => Promise<void>> {
  // Each project of the run calls this; the first one's folder serves them all.
  if (basename(tmpdir()).startsWith(PREFIX)) return async () => {};
  const run = await mkdtemp(join(tmpdir(), PREFIX));
  process.env.TMPDIR = run;
  return async () => {
    await rm(run, { recursive: true, force: true, maxRetries: 3 }).catch((err: unknown) => {
      console.warn(`could not remove ${run}: ${(err as Error).message}`);
    });
  };
}
